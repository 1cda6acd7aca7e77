"""GET /p.gif answered inside uvicorn's protocol (collector.fastpath), against a real
uvicorn server on a socket; the sink is a list (pure collector logic), the answer waits
for the sink's future like it waits for Kafka's acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn

from clickstream.broker import free_port
from clickstream.hit import Hit
from clickstream.metrics import METRICS
from clickstream.settings import load
from collector import fastpath
from collector.hot import GIF, Collector

PIXEL = "/p.gif?s=demo&u=https%3A%2F%2Fa.example%2Fx"


class PixelApp:
    """The two faces ClickstreamApp shows the protocol: ``fast_pixel`` and the ASGI app."""

    def __init__(self, outcome: bool = True, delay: float = 0.0, **settings: Any):
        self.hits: list[Hit] = []
        self.asgi: list[tuple[str, str]] = []
        self.outcome, self.delay = outcome, delay
        self.collector = Collector(load(flags=settings, env={}), self.put)
        self.fast_pixel = (self.collector, self.submit)

    def submit(self, hits: list[Hit], done: Any) -> None:
        self.hits += hits
        asyncio.get_running_loop().call_later(self.delay, done, self.outcome)

    async def put(self, hits: list[Hit]) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.submit(hits, fut.set_result)
        return await fut

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.asgi.append((scope["method"], scope["path"]))
        await self.collector.pixel(scope, receive, send)


@contextlib.asynccontextmanager
async def running(app: Any, proxy_headers: bool = False) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        http=fastpath.protocol(),
        proxy_headers=proxy_headers,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def raw(url: str, data: bytes, until_closed: bool = False, responses: int = 1) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    out = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            out += chunk
            if not until_closed and out.count(GIF) >= responses:
                break
    finally:
        writer.close()
    return out


async def test_pixel_is_answered_without_the_asgi_app() -> None:
    app = PixelApp()
    async with running(app) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get(
            PIXEL, headers={"user-agent": "Mozilla/5.0 T", "cookie": "_cs_vid=abcdefgh12345678"}
        )
    assert r.status_code == 200 and r.content == GIF
    assert r.headers["content-type"] == "image/gif" and "no-store" in r.headers["cache-control"]
    assert r.headers["set-cookie"].startswith("_cs_vid=abcdefgh12345678;")
    assert app.asgi == []  # the fast path answered
    [hit] = app.hits
    assert (hit.site, hit.url, hit.visitor_id, hit.user_agent, hit.ip) == (
        "demo",
        "https://a.example/x",
        "abcdefgh12345678",
        "Mozilla/5.0 T",
        "127.0.0.0",
    )


async def test_answer_waits_for_the_commit() -> None:
    app = PixelApp(delay=0.3)
    async with running(app) as url, httpx.AsyncClient(base_url=url) as client:
        t0 = time.monotonic()
        r = await client.get(PIXEL)
        assert time.monotonic() - t0 >= 0.3
    assert r.status_code == 200 and "set-cookie" in r.headers and len(app.hits) == 1


async def test_spool_full_answers_the_gif_without_cookie_or_count() -> None:
    app = PixelApp(outcome=False)
    before = METRICS.get("hits_accepted_total", source="pixel")
    async with running(app) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get(PIXEL)
    assert r.status_code == 200 and r.content == GIF and "set-cookie" not in r.headers
    assert METRICS.get("hits_accepted_total", source="pixel") == before


async def test_a_dropped_pixel_is_counted_and_still_gets_the_gif() -> None:
    app = PixelApp()
    before = METRICS.get("hits_dropped_total", reason="missing_site")
    async with running(app) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/p.gif?u=https%3A%2F%2Fa.example%2F")
    assert r.status_code == 200 and r.content == GIF and "set-cookie" not in r.headers
    assert app.hits == [] and app.asgi == []
    assert METRICS.get("hits_dropped_total", reason="missing_site") == before + 1


async def test_pipelined_pixels_are_answered_in_order() -> None:
    app = PixelApp(delay=0.05)
    one = f"GET {PIXEL}&t=one HTTP/1.1\r\nHost: c.test\r\n\r\n".encode()
    two = f"GET {PIXEL}&t=two HTTP/1.1\r\nHost: c.test\r\n\r\n".encode()
    async with running(app) as url:
        out = await raw(url, one + two, responses=2)
    answers = out.split(b"HTTP/1.1 200 OK")[1:]
    assert len(answers) == 2 and all(a.endswith(GIF) for a in answers)
    assert [h.title for h in app.hits] == ["one", "two"]
    cookies = [a.split(b"set-cookie: _cs_vid=")[1][:32].decode() for a in answers]
    assert cookies == [h.visitor_id for h in app.hits]  # each answer carries its own hit's cookie
    assert app.asgi == [("GET", "/p.gif")]  # the second waited behind the first, the ASGI way


async def test_http_1_0_and_connection_close_end_the_connection() -> None:
    app = PixelApp()
    async with running(app) as url:
        old = await raw(url, f"GET {PIXEL} HTTP/1.0\r\n\r\n".encode(), until_closed=True)
        close = await raw(
            url,
            f"GET {PIXEL} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n".encode(),
            until_closed=True,
        )
    for out in (old, close):
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close\r\n" in out
        assert out.endswith(GIF)  # and then the server closed (raw read to EOF)
    assert len(app.hits) == 2


async def test_a_client_gone_before_the_commit_harms_nothing() -> None:
    app = PixelApp(delay=0.2)
    async with running(app) as url:
        host, port = url.removeprefix("http://").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {PIXEL} HTTP/1.1\r\nHost: c\r\n\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await asyncio.sleep(0.3)  # the commit ends after the client left
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get(PIXEL)).status_code == 200
    assert len(app.hits) == 2  # accepted before the client left: kept


async def test_other_methods_take_the_asgi_path() -> None:
    app = PixelApp()
    async with running(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.head(PIXEL)).status_code == 200
        assert (await client.post(PIXEL)).status_code == 200
    assert app.asgi == [("HEAD", "/p.gif"), ("POST", "/p.gif")]


async def test_behind_a_trusted_proxy_the_forwarded_client_is_used() -> None:
    proxied = PixelApp()
    forwarded = {"x-forwarded-for": "203.0.113.9, 198.51.100.7", "x-forwarded-proto": "https"}
    async with (
        running(proxied, proxy_headers=True) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        r = await client.get(PIXEL, headers=forwarded)
    assert r.status_code == 200 and proxied.asgi == []  # still the fast path
    assert (
        proxied.hits[0].ip == "198.51.100.0"
    )  # uvicorn's rewrite (nearest untrusted hop), truncated
    assert "Secure" in r.headers["set-cookie"]  # the scheme the proxy saw


async def test_an_untrusted_peer_cannot_forge_its_address() -> None:
    app = PixelApp()
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        http=fastpath.protocol(),
        proxy_headers=True,
        forwarded_allow_ips="10.9.9.9",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await client.get(PIXEL, headers={"x-forwarded-for": "198.51.100.7"})
    finally:
        server.should_exit = True
        await task
    assert app.asgi == [] and app.hits[0].ip == "127.0.0.0"  # the real peer, not the header


async def test_an_idle_keep_alive_connection_is_closed_by_the_sweep() -> None:
    app = PixelApp()
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        http=fastpath.protocol(),
        timeout_keep_alive=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {PIXEL} HTTP/1.1\r\nHost: c\r\n\r\n".encode())
        t0 = time.monotonic()
        answer = b""
        while not answer.endswith(GIF):
            answer += await asyncio.wait_for(reader.read(65536), 5)
        assert await asyncio.wait_for(reader.read(65536), 5) == b""  # closed by the server
        assert 1.0 <= time.monotonic() - t0 < 3.5  # timeout_keep_alive, swept once a second
        writer.close()
    finally:
        server.should_exit = True
        await task


async def test_pixel_targets_the_fast_path_reads_like_uvicorn() -> None:
    app = PixelApp()
    targets = [
        f"{PIXEL}&t=plain",  # the usual origin form
        f"{PIXEL}&t=fragment#not-sent-by-browsers",  # a fragment is not part of the query
        f"http://c.test{PIXEL}&t=absolute",  # absolute form (a proxy's)
        "/p.gif",  # no query: the site is missing, counted, still the GIF
    ]
    async with running(app) as url:
        for target in targets:
            out = await raw(url, f"GET {target} HTTP/1.1\r\nHost: c.test\r\n\r\n".encode())
            assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(GIF), target
    assert app.asgi == []
    assert [h.title for h in app.hits] == ["plain", "fragment", "absolute"]
    assert all(h.url == "https://a.example/x" for h in app.hits)


async def test_near_pixel_paths_take_the_asgi_path() -> None:
    app = PixelApp()
    async with running(app) as url:
        for target in ("/p.gifx?s=demo", "/p.gif/?s=demo", "/P.gif?s=demo", "/x/p.gif?s=demo"):
            await raw(url, f"GET {target} HTTP/1.1\r\nHost: c.test\r\n\r\n".encode())
    assert [path for _, path in app.asgi] == ["/p.gifx", "/p.gif/", "/P.gif", "/x/p.gif"]


async def test_headers_are_read_as_uvicorn_does() -> None:
    app = PixelApp()
    request = (
        f"GET {PIXEL} HTTP/1.1\r\nHost: c.test\r\nUSER-AGENT: first\r\nuser-agent: second \t\r\n"
        "Cookie: a=1; _cs_vid=abcdefgh12345678\r\nX-Empty:\r\n\r\n"
    ).encode()
    async with running(app) as url:
        out = await raw(url, request)
    assert b"set-cookie: _cs_vid=abcdefgh12345678;" in out
    [hit] = app.hits
    assert hit.user_agent == "second"  # names lower-cased, the last one wins, trailing blanks cut
    assert hit.visitor_id == "abcdefgh12345678" and app.asgi == []


async def test_expect_100_continue_still_reaches_the_asgi_path() -> None:
    bodies: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        bodies.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with running(app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /collect HTTP/1.1\r\nHost: c\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        )
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"{}")
        second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
    assert first.startswith(b"HTTP/1.1 100 Continue") and second.startswith(b"HTTP/1.1 204")
    assert bodies == [b"{}"]


async def test_pixels_over_the_header_limits_are_refused_before_the_fast_path() -> None:
    app = PixelApp()
    async with running(app) as url:
        many = await raw(
            url,
            (f"GET {PIXEL} HTTP/1.1\r\nHost: c\r\n" + "X-A: 1\r\n" * 101 + "\r\n").encode(),
            until_closed=True,
        )
        big = await raw(
            url,
            f"GET {PIXEL} HTTP/1.1\r\nHost: c\r\nX-Big: {'b' * 33_000}\r\n\r\n".encode(),
            until_closed=True,
        )
        long = await raw(
            url,
            f"GET {PIXEL}&t={'t' * 17_000} HTTP/1.1\r\nHost: c\r\n\r\n".encode(),
            until_closed=True,
        )
    for out in (many, big, long):
        assert out.startswith(b"HTTP/1.1 400 ")
    assert app.hits == [] and app.asgi == []
