"""A recording collector and a page server for the tracker's browser tests.

Two tiny Starlette apps on two ports of 127.0.0.1 (two origins): the *collector*
serves the built ``/t.js`` and records every ``GET /p.gif`` and ``POST /collect``;
the *site* serves test pages from a dict.  Both run under uvicorn in a thread.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from collector.snippet import snippet

T_JS = Path(__file__).resolve().parents[2] / "collector" / "static" / "t.js"
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@dataclass
class Sent:
    """One hit as the browser sent it."""

    kind: str  # "pixel" (GET /p.gif), "beacon" (POST /collect object), "batch" (array item)
    params: dict[str, object]
    content_type: str = ""
    referer: str = ""
    cookie: str = ""


@dataclass
class Recorder:
    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Sent) -> None:
        with self.lock:
            self.sent.append(item)

    def wait(self, count: int, timeout: float = 5.0, settle: float = 0.3) -> list[Sent]:
        """The hits once ``count`` arrived, after ``settle`` s more to catch extras."""
        deadline = time.monotonic() + timeout
        while len(self.sent) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(settle)
        with self.lock:
            return list(self.sent)

    def clear(self) -> None:
        with self.lock:
            self.sent.clear()


def collector_app(recorder: Recorder) -> Starlette:
    async def t_js(request: Request) -> Response:
        return FileResponse(
            T_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=300"}
        )

    async def pixel(request: Request) -> Response:
        recorder.add(
            Sent(
                "pixel",
                dict(request.query_params),
                referer=request.headers.get("referer", ""),
                cookie=request.headers.get("cookie", ""),
            )
        )
        return Response(GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})

    async def collect(request: Request) -> Response:
        cors = {
            "Access-Control-Allow-Origin": request.headers.get("origin", "*"),
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Headers": "content-type",
        }
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=cors)
        body = json.loads(await request.body())
        ctype = request.headers.get("content-type", "")
        cookie = request.headers.get("cookie", "")
        for item in body if isinstance(body, list) else [body]:
            kind = "batch" if isinstance(body, list) else "beacon"
            recorder.add(Sent(kind, item, content_type=ctype, cookie=cookie))
        return Response(status_code=204, headers=cors)

    return Starlette(
        routes=[
            Route("/t.js", t_js),
            Route("/p.gif", pixel),
            Route("/collect", collect, methods=["POST", "OPTIONS"]),
        ]
    )


def site_app(pages: dict[str, str]) -> Starlette:
    async def page(request: Request) -> Response:
        html = pages.get(request.url.path)
        if html is None:
            return Response("no such test page", status_code=404)
        return HTMLResponse(html)

    return Starlette(routes=[Route("/{path:path}", page)])


class Server:
    """uvicorn in a thread on a pre-bound 127.0.0.1 socket."""

    def __init__(self, app: Starlette):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def page_html(
    site: str,
    collector_url: str,
    title: str,
    body: str = "",
    before: str = "",
    respect_dnt: bool = False,
    search_params: str = "",
) -> str:
    """A test page with the pasted snippet; ``before`` runs right after the queue stub."""
    js = snippet(site, collector_url, respect_dnt=respect_dnt, search_params=search_params)["js"]
    js = js.replace("</script>", before + "</script>", 1)
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>{js}</head>"
        f"<body>{body}</body></html>"
    )


SITE = "shop"


@dataclass
class Web:
    """The two origins of a test: pages on ``site_url``, hits recorded from ``collector_url``."""

    collector_url: str
    site_url: str
    recorder: Recorder
    pages: dict[str, str] = field(default_factory=dict)

    def page(
        self, path: str, title: str, body: str = "", before: str = "", **kw: bool | str
    ) -> str:
        """Serve a page with the snippet at ``path``; returns its absolute URL."""
        self.pages[path] = page_html(SITE, self.collector_url, title, body, before, **kw)
        return self.site_url + path

    def raw(self, path: str, html: str) -> str:
        self.pages[path] = html
        return self.site_url + path
