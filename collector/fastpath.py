"""``GET /p.gif`` answered inside the HTTP protocol, without an ASGI cycle.

uvicorn spends most of a pixel's time on the ASGI machinery around the app (a task,
a cycle object, message dicts, header checks), not on parsing.  This subclass of the
limited httptools protocol (``clickstream.httplimits``) recognises ``GET /p.gif`` once
its headers are parsed and runs the same :class:`collector.hot.Collector` decision as
the ASGI path (``pixel_hit`` / ``pixel_headers``, so validation, cookies, privacy,
rate limits and counters are one code); the hit joins the sink's group commit
(``HitSink.submit``) and the GIF is written when the commit is durable, exactly when
the ASGI path would answer.  Every other request, a pipelined request behind an
unanswered pixel, and any pixel when a concurrency limit is reached, goes the usual ASGI
way.  Behind a trusted proxy (``trust_proxy``) uvicorn's own X-Forwarded-For rewrite
runs on the pixel's scope first.
Setting ``pixel_fast_path = false`` turns it off.
"""

from __future__ import annotations

from typing import Any

import httptools
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from clickstream import httplimits
from collector.hot import GIF, GIF_HEADERS

STATUS_200 = b"HTTP/1.1 200 OK\r\n"
_END = b"\r\n" + GIF


class _Event:
    """What uvicorn sets on a cycle's ``message_event``; a fast cycle waits on nothing."""

    def set(self) -> None:
        pass


class FastCycle:
    """Stands in for uvicorn's RequestResponseCycle while a pixel waits for its commit:
    the attributes the protocol reads (``response_complete``, ``keep_alive``, ...)."""

    __slots__ = (
        "keep_alive",
        "response_complete",
        "disconnected",
        "body",
        "more_body",
        "message_event",
    )

    def __init__(self, keep_alive: bool):
        self.keep_alive = keep_alive
        self.response_complete = False
        self.disconnected = False
        self.body = b""
        self.more_body = True
        self.message_event = _Event()


def _proxy_rewriter(trusted: Any) -> Any:
    """uvicorn's own X-Forwarded-For/-Proto rewrite of a scope, run synchronously: its
    middleware around an app that returns at once completes in a single step."""

    async def keep(scope: Any, receive: Any, send: Any) -> None:
        return None

    middleware = ProxyHeadersMiddleware(keep, trusted_hosts=trusted)

    def rewrite(scope: dict[str, Any]) -> None:
        step = middleware(scope, None, None)  # type: ignore[arg-type]
        try:
            step.send(None)
        except StopIteration:
            return
        step.close()  # pragma: no cover - it never waits
        raise RuntimeError("uvicorn's proxy headers middleware waited")  # pragma: no cover

    return rewrite


def protocol() -> Any:
    """The class to give ``uvicorn.Config(http=...)``: limited httptools with the pixel
    fast path (h11 when httptools is missing: no fast path)."""
    base = httplimits.protocol()
    if isinstance(base, str):  # pragma: no cover - httptools is a dependency of uvicorn[standard]
        return base

    class PixelFastPathProtocol(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            app, self._proxy = self.app, None
            if isinstance(app, ProxyHeadersMiddleware):  # trust_proxy: uvicorn rewrites the client
                app, self._proxy = app.app, _proxy_rewriter(self.config.forwarded_allow_ips)
            self._fast = getattr(app, "fast_pixel", None) if not self.root_path else None
            # the answer up to the optional Set-Cookie: the same bytes for every pixel
            self._head = STATUS_200 + b"".join(
                name + b": " + value + b"\r\n"
                for name, value in (*self.server_state.default_headers, *GIF_HEADERS)
            )

        def on_headers_complete(self) -> None:
            if (
                self._fast is not None
                and (self.cycle is None or self.cycle.response_complete)
                and self.parser.get_method() == b"GET"
                and (
                    self.limit_concurrency is None
                    or (
                        len(self.connections) < self.limit_concurrency
                        and len(self.tasks) < self.limit_concurrency
                    )
                )
            ):
                target = self.url
                if target.startswith(b"/p.gif?") and b"#" not in target:  # the usual origin form
                    self._pixel(target[7:])
                    return
                url = httptools.parse_url(target)
                if url.path == b"/p.gif":
                    self._pixel(url.query or b"")
                    return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if type(self.cycle) is FastCycle:  # a GET's body: the pixel reads none
                return
            super().on_body(body)

        def on_message_complete(self) -> None:
            if type(self.cycle) is FastCycle:
                self._disarm()  # the request deadline (httplimits) is met
                return
            super().on_message_complete()

        def _pixel(self, query: bytes) -> None:
            scope = self.scope
            scope["method"] = "GET"
            scope["path"] = "/p.gif"
            scope["query_string"] = query
            if self._proxy is not None:
                self._proxy(scope)
            parser = self.parser
            cycle = self.cycle = FastCycle(
                parser.get_http_version() != "1.0" and parser.should_keep_alive()
            )
            assert self._fast is not None  # _pixel is only called when the fast path is on
            collector, submit = self._fast
            hit, set_cookie = collector.pixel_hit(
                scope, dict(self.headers)
            )  # as header_map: the last wins
            if hit is None:
                self._answer(cycle, None)
                return

            def committed(accepted: bool) -> None:
                self._answer(cycle, collector.pixel_cookie(hit, set_cookie, accepted, scope))

            submit([hit], committed)

        def _answer(self, cycle: FastCycle, cookie: tuple[bytes, bytes] | None) -> None:
            if cycle.disconnected or self.transport.is_closing():
                cycle.response_complete = True
                return
            out = [self._head]
            if cookie is not None:
                out += (cookie[0], b": ", cookie[1], b"\r\n")
            if not cycle.keep_alive:
                out.append(b"connection: close\r\n")
            out.append(_END)
            self.transport.write(b"".join(out))
            cycle.response_complete = True
            if not cycle.keep_alive:
                self.transport.close()
            self.on_response_complete()

    return PixelFastPathProtocol
