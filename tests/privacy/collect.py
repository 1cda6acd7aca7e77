"""The collector in-process with a list as its sink, settings from a TOML text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from clickstream.hit import Hit
from clickstream.settings import load
from collector.hot import Collector


def collector(
    tmp_path: Path,
    toml: str = "",
    ip: str = "203.0.113.77",
    base: str = "http://c.test",
    **flags: Any,
) -> tuple[httpx.AsyncClient, list[Hit], Collector]:
    cfg = tmp_path / "clickstream.toml"
    cfg.write_text(toml)
    flags = {"data": str(tmp_path / "data"), **flags}
    settings = load(flags=flags, env={}, config_file=cfg)
    sink: list[Hit] = []

    async def put(hits: list[Hit]) -> None:
        sink.extend(hits)

    col = Collector(settings, put)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["path"] == "/p.gif":
            await col.pixel(scope, receive, send)
        else:
            await col.beacon(scope, receive, send)

    transport = httpx.ASGITransport(app=app, client=(ip, 5555))
    return httpx.AsyncClient(transport=transport, base_url=base), sink, col
