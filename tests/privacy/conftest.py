"""App factories for the privacy tests: the real ClickstreamApp, no lifespan (no broker)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from clickstream.serve import build_for_tests
from clickstream.settings import load

ADMIN = "admin-token-0123456789"
READER = "reader-token-0123456789"
PASSWORD = "correct horse battery staple"


def make_app(tmp_path: Path, **overrides: Any) -> Any:
    flags = {
        "data": str(tmp_path / "data"),
        "read_token": "sha256:" + hashlib.sha256(READER.encode()).hexdigest(),
        "dashboard_password": PASSWORD,
        **overrides,
    }
    return build_for_tests(load(flags=flags, env={}), "127.0.0.1:9", token=ADMIN)


def client(app: Any, base: str = "http://cs.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.7", 4000)), base_url=base
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
