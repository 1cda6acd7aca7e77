"""Shared fixtures: the real Tansu broker, one chDB engine per test process, serve processes.

chDB allows one engine path per process: every in-process test uses ``ch`` (one path
for the whole run) and isolates itself with its own database from ``database``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from clickstream import warehouse
from clickstream.broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real Tansu broker over TCP for the whole run."""
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    with EmbeddedBroker(log_path=log) as b:
        yield b


@pytest.fixture(scope="session")
def ch(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The one in-process chDB engine of this test process."""
    path = tmp_path_factory.mktemp("chdb") / "engine"
    return warehouse.connect(f"chdb://{path}")


@pytest.fixture
def database(ch) -> str:  # type: ignore[no-untyped-def]
    """A fresh database with the current schema, unique to the test."""
    name = "t_" + uuid.uuid4().hex[:12]
    warehouse.migrate(ch, name)
    return name


@dataclass
class Served:
    url: str
    token: str
    data: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def sql(self, query: str) -> list[list[object]]:
        r = httpx.post(
            f"{self.url}/api/sql",
            content=query,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return r.json()["rows"]

    def flush(self) -> None:
        r = httpx.post(
            f"{self.url}/api/flush", headers={"Authorization": f"Bearer {self.token}"}, timeout=60
        )
        assert r.status_code == 200, r.text

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def start_serve(
    data: Path, *extra: str, token: str = "test-token", env: dict[str, str] | None = None
) -> Served:
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data / "serve.log"
    full_env = {**os.environ, "CLICKSTREAM_API_TOKEN": token, **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clickstream.cli",
            "serve",
            "--port",
            str(port),
            "--data",
            str(data),
            "--flush-interval-s",
            "0.2",
            *extra,
        ],
        stdout=open(log, "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Served(url, token, data, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"serve did not become healthy:\n{log.read_text()[-3000:]}")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    s = start_serve(tmp_path / "data")
    try:
        yield s
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
