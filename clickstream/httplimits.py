"""Hard limits on what one HTTP request may cost before the app sees it.

uvicorn's httptools protocol (the fast one, used when httptools is installed) has
no limit on header size or count, and no deadline for a client that sends its
request slowly.  This subclass adds them; a request over a limit gets uvicorn's
fixed ``400 Invalid HTTP request`` and the connection is closed; a request not
fully received within the deadline has its connection closed (the app, if it was
reading the body, sees ``http.disconnect``).  Without httptools, uvicorn's h11
protocol applies ``h11_max_incomplete_event_size`` instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from clickstream.metrics import METRICS

MAX_REQUEST_TARGET = 16 * 1024  # path + query string
MAX_HEADER_BYTES = 32 * 1024  # all names and values together (cookies included)
MAX_HEADERS = 100
REQUEST_DEADLINE_S = 10.0  # from the request's first byte to its last body byte


class RequestLimitError(Exception):
    """Raised inside a parser callback: httptools turns it into a parse error (400)."""


def protocol() -> Any:
    """The class to give ``uvicorn.Config(http=...)``: limited httptools, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
        return "h11"

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        # when the request being received began (monotonic seconds); 0: none pending.
        # A sweep once a second closes the late ones: a timer per request would cost
        # about 15 µs of a pixel's time (uvloop's call_later plus cancel).
        _began = 0.0
        _idle = 0.0  # when the last response ended with nothing pending (keep-alive wait)
        _target = 0
        _header_bytes = 0
        _header_count = 0
        _refusal = ""  # the limit a request broke, for the 400's counter ("" = malformed)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._began = time.monotonic()  # the first request's bytes must come in time too
            _watch(self.loop, self.connections)

        def connection_lost(self, exc: Exception | None) -> None:
            self._began = 0.0
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._target = self._header_bytes = self._header_count = 0
            self._began = time.monotonic()

        def on_url(self, url: bytes) -> None:
            self._target += len(url)
            if self._target > MAX_REQUEST_TARGET:
                self._refusal = "target_too_long"
                raise RequestLimitError("request target too long")
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            self._header_bytes += len(name) + len(value)
            if self._header_count > MAX_HEADERS or self._header_bytes > MAX_HEADER_BYTES:
                self._refusal = "headers_too_large"
                raise RequestLimitError("headers too large")
            # uvicorn's own on_header, inlined: one Python call a header instead of two
            name = name.lower()
            value = value.rstrip(
                b" \t"
            )  # llhttp keeps trailing whitespace (RFC 9110 5.5 excludes it)
            if name == b"expect" and value.lower() == b"100-continue":
                self.expect_100_continue = True
            self.headers.append((name, value))

        def send_400_response(self, msg: str) -> None:
            # every fixed 400 of the parser: a limit above, or bytes that are not HTTP
            METRICS.inc("http_requests_refused_total", reason=self._refusal or "malformed")
            self._refusal = ""
            super().send_400_response(msg)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def _disarm(self) -> None:
            self._began = 0.0

        def _too_slow(self) -> None:
            self._began = 0.0
            METRICS.inc("http_slow_clients_total")
            if not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self) -> None:
            # uvicorn's, except that the keep-alive wait is swept too (``_idle``), not a
            # timer armed after every response and cancelled by the next request
            self._began = 0.0
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            else:
                self._idle = time.monotonic()

        def data_received(self, data: bytes) -> None:
            self._idle = 0.0
            super().data_received(data)

    return LimitedHttpToolsProtocol


_watched: set[tuple[int, int]] = set()  # (loop, connection set) pairs being swept


def _watch(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
    """Sweep the server's connections once a second while it has any."""
    key = (id(loop), id(connections))
    if key in _watched:
        return
    _watched.add(key)

    def sweep() -> None:
        now = time.monotonic()
        for conn in list(connections):
            began = getattr(conn, "_began", 0.0)
            if began and now - began > REQUEST_DEADLINE_S:
                conn._too_slow()
            idle = getattr(conn, "_idle", 0.0)
            if idle and now - idle > conn.timeout_keep_alive:
                conn._idle = 0.0
                conn.timeout_keep_alive_handler()
        if connections and not loop.is_closed():
            loop.call_later(1.0, sweep)
        else:
            _watched.discard(key)

    loop.call_later(1.0, sweep)
