"""Extra collector processes of ``clickstream serve``: the pixel on every core.

One Python process answers about one core's worth of pixels, and the main process
also runs the sessionizer, chDB and the dashboard.  ``serve`` therefore starts
``workers - 1`` collector processes that bind the same public port with
``SO_REUSEPORT`` (the kernel spreads connections over all of them).  A worker answers
``/p.gif``, ``/collect``, ``/t.js``, ``/optout`` and ``/r`` itself, each with its own
Kafka producer and spool directory, and forwards every other request (dashboard,
API) to the main process over loopback.  Its counters are read by the main
process's ``/metrics`` from the worker's own loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
from typing import Any

import httpx
import orjson

from clickstream.metrics import METRICS
from clickstream.settings import Settings

log = logging.getLogger("clickstream.worker")
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
MAX_PROXIED_BODY = 1024 * 1024


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise OSError naming the port when something already listens on it.

    A ``SO_REUSEPORT`` bind succeeds next to any other ``SO_REUSEPORT`` listener of the same
    user, so a second ``serve`` on a taken port would start and get half of the connections;
    a plain bind (``SO_REUSEADDR`` only, which tolerates TIME_WAIT) fails instead."""
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(
                f"cannot listen on {host}:{port}: {exc.strerror} "
                "(another `clickstream serve`? pick --port)"
            ) from None


def loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    return sock


class Forward:
    """ASGI app: send the request to the main process, stream the answer back."""

    def __init__(self, upstream: str):
        self.client = httpx.AsyncClient(base_url=upstream, timeout=120)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            await self.client.aclose()
            return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_PROXIED_BODY:
                await _plain(send, 413, b"request body too large")
                return
            if not message.get("more_body"):
                break
        # the Host header goes on as the browser sent it: the main process builds URLs
        # from it (the snippet's collector URL, redirects), not from its loopback port
        headers = [(k, v.strip()) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        url = scope["path"] + (
            "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
        )
        try:
            async with self.client.stream(
                scope["method"], url, headers=headers, content=bytes(body)
            ) as r:
                out = [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in r.headers.multi_items()
                    if k.lower().encode() not in HOP_BY_HOP and k.lower() != "content-length"
                ]
                await send({"type": "http.response.start", "status": r.status_code, "headers": out})
                async for chunk in r.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except httpx.LocalProtocolError:
            await _plain(send, 400, b"malformed request headers")
        except httpx.HTTPError:
            await _plain(send, 502, b"main process unavailable")


async def _plain(send: Any, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(text)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})


async def serve_metrics(sock: socket.socket) -> asyncio.Server:
    """The worker's loopback port: one JSON snapshot of its counters per connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            body = orjson.dumps(METRICS.snapshot())
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, sock=sock)


def worker_main(
    values: dict[str, Any],
    sites: dict[str, Any],
    bootstrap: str,
    upstream: str,
    host: str,
    port: int,
    metrics_port_pipe: Any,
    index: int,
) -> None:  # pragma: no cover - child
    import uvicorn

    from clickstream.serve import ClickstreamApp, Roles

    with contextlib.suppress(OSError):
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # die with the main process
    settings = Settings(values, sites)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker{index} %(name)s: %(message)s",
    )
    app = ClickstreamApp(
        settings,
        bootstrap,
        Roles(collector=True, sessionizer=False, dashboard=False),
        token="",
        forward=Forward(upstream),
        spool_name=f"worker-{index}",
    )
    public = reuseport_socket(host, port)
    metrics_sock = loopback_socket()
    metrics_port_pipe.send(metrics_sock.getsockname()[1])
    metrics_port_pipe.close()
    from clickstream.serve import uvicorn_config

    server = uvicorn.Server(uvicorn_config(app, settings))

    async def main() -> None:
        metrics = await serve_metrics(metrics_sock)
        try:
            await server.serve(sockets=[public])  # uvicorn handles SIGTERM: drain, lifespan, exit
        finally:
            metrics.close()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(main())
    else:
        uvloop.run(main())
    sys.exit(0)


class Workers:
    """The main process's handle on its collector processes."""

    def __init__(self) -> None:
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.metrics_ports: list[int] = []

    def start(
        self, count: int, settings: Settings, bootstrap: str, upstream: str, host: str, port: int
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        for i in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main,
                name=f"clickstream-collector-{i + 1}",
                daemon=False,
                args=(
                    settings.as_dict(),
                    settings.site_overrides,
                    bootstrap,
                    upstream,
                    host,
                    port,
                    child,
                    i + 1,
                ),
            )
            proc.start()
            child.close()
            if parent.poll(60):
                self.metrics_ports.append(parent.recv())
            self.procs.append(proc)

    async def snapshots(self) -> list[dict[str, Any]]:
        out = []
        async with httpx.AsyncClient(timeout=2) as client:
            for port in self.metrics_ports:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    out.append((await client.get(f"http://127.0.0.1:{port}/")).json())
        return out

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM each worker: it stops answering, flushes its producer and spool, exits."""
        for p in self.procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs:
            p.join(timeout)
            if p.is_alive():
                p.kill()
                p.join()
