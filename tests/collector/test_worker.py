"""The worker's forward to the main process keeps what the main process answers with."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from clickstream.settings import load
from collector.snippet import api_snippet
from collector.worker import Forward


def _main_process() -> Any:
    """The main process's /api/snippet, as serve mounts it."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(routes=[Route("/api/snippet", api_snippet)])
    app.state.settings = load(env={})
    return app


def test_forwarded_api_snippet_names_the_public_host_not_the_loopback_port() -> None:
    forward = Forward("http://127.0.0.1:1")
    forward.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_main_process()), base_url="http://127.0.0.1:43211"
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/snippet",
        "query_string": b"site=shop",
        "headers": [(b"host", b"stats.example.com:8792"), (b"accept", b"*/*")],
    }
    asyncio.run(forward(scope, receive, send))
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert "http://stats.example.com:8792/t.js" in body and "43211" not in body


def test_a_taken_port_is_refused_although_reuseport_would_share_it() -> None:
    """A second `serve` on the port of a running one started and took half the connections."""
    import pytest

    from collector.worker import check_port_free, reuseport_socket

    running = reuseport_socket("127.0.0.1", 0)  # what a running serve's workers hold
    port = running.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: .*pick --port"):
            check_port_free("127.0.0.1", port)
        reuseport_socket("127.0.0.1", port).close()  # the bind serve relied on: it succeeds
    finally:
        running.close()
    check_port_free("127.0.0.1", port)  # free again
