"""The pixel and beacon hot path as raw ASGI callables (no Starlette Request parsing).

``GET /p.gif`` always answers the 1x1 GIF; a bad request is dropped and counted.
``POST /collect`` answers 204, or 4xx with ``{"errors": [...]}`` for a bad body.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from clickstream.hit import Hit
from clickstream.metrics import METRICS
from clickstream.settings import Settings
from collector.cookieless import DailySalt
from collector.ratelimit import RateLimiter
from collector.validate import VID_RE, Drop, Request, build_hit, normalize, parse_qs

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# nginx's empty_gif: a valid 43-byte 1x1 transparent GIF89a
GIF = bytes.fromhex(
    "47494638396101000100800100000000ffffff21f90401000000002c00000000010001000002024401003b"
)
GIF_HEADERS = (
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode()),
    (b"cache-control", b"no-store, max-age=0"),
)
COOKIE = "_cs_vid"
OPTOUT = "_cs_optout"
TWO_YEARS = 2 * 365 * 86400
MAX_COOKIE_HEADER = 8192


def header_map(scope: Scope) -> dict[bytes, bytes]:
    return {k: v for k, v in scope.get("headers", ())}


def read_cookie(header: bytes, name: str) -> str:
    if not header or len(header) > MAX_COOKIE_HEADER:
        return ""
    needle = name.encode() + b"="
    if needle not in header:  # the common case (no cookie of ours): no split
        return ""
    for part in header.split(b";"):
        part = part.strip()
        if part.startswith(needle):
            try:
                return part[len(needle) :].decode("ascii")
            except UnicodeDecodeError:
                return ""
    return ""


class Collector:
    def __init__(self, settings: Settings, put: Callable[[list[Any]], Awaitable[bool | None]]):
        self.settings = settings
        self.put = put
        scope_attrs = "; Path=/"  # what _cs_vid and _cs_optout share
        if settings.cookie_domain:
            scope_attrs += f"; Domain={settings.cookie_domain}"
        scope_attrs += (
            "; SameSite=None; Secure" if settings.cookie_third_party else "; SameSite=Lax"
        )
        self.cookie_scope_attrs = scope_attrs
        self.cookie_attrs = f"; Max-Age={TWO_YEARS}{scope_attrs}"
        self.limiter = (
            RateLimiter(settings.rate_limit_per_ip, settings.rate_limit_burst)
            if settings.rate_limit_per_ip > 0
            else None
        )
        self.salts = DailySalt(settings.data_dir / "salt")

    def _rate_limited(self, scope: Scope) -> bool:
        if self.limiter is None:
            return False
        client = scope.get("client")
        if self.limiter.allow(client[0] if client else ""):
            return False
        METRICS.inc("hits_dropped_total", reason="rate_limited")
        return True

    def _cookieless(self, params: dict[str, Any], req: Request) -> Request | None:
        """For a cookieless site: the request with its daily hashed visitor id."""
        site = params.get("s")
        if not isinstance(site, str) or not self.settings.for_site(site).cookieless:
            return None
        params.pop("vid", None)
        return dataclasses.replace(
            req, cookie_vid=self.salts.visitor_id(site, req.ip, req.user_agent)
        )

    def request_info(self, scope: Scope, headers: dict[bytes, bytes], source: str) -> Request:
        client = scope.get("client")
        vid = read_cookie(headers.get(b"cookie", b""), COOKIE)
        if vid and not VID_RE.match(vid):
            vid = ""
            METRICS.inc("bad_cookie_total")
        return Request(
            received=int(time.time() * 1000),
            ip=client[0] if client else "",
            user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:512],
            referer=headers.get(b"referer", b"").decode("latin-1")[:4096],
            cookie_vid=vid,
            source=source,
        )

    def _refused_by_privacy(self, headers: dict[bytes, bytes], site: str) -> str:
        if read_cookie(headers.get(b"cookie", b""), OPTOUT) == "1":
            return "opt_out"
        if self.settings.for_site(site).respect_dnt and (
            headers.get(b"dnt") == b"1" or headers.get(b"sec-gpc") == b"1"
        ):
            return "dnt"
        return ""

    def cookie(self, name: str, value: str, max_age: int, scope: Scope) -> tuple[bytes, bytes]:
        """A Set-Cookie header with the visitor cookie's Path, Domain and SameSite."""
        attrs = self.cookie_scope_attrs
        secure = "; Secure" if scope.get("scheme") == "https" and "Secure" not in attrs else ""
        return (b"set-cookie", f"{name}={value}; Max-Age={max_age}{attrs}{secure}".encode())

    def _set_cookie(self, vid: str, scope: Scope) -> tuple[bytes, bytes]:
        secure = (
            "; Secure"
            if scope.get("scheme") == "https" and "Secure" not in self.cookie_attrs
            else ""
        )
        return (b"set-cookie", f"{COOKIE}={vid}{self.cookie_attrs}{secure}".encode())

    def pixel_hit(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        params: dict[str, Any] | None = None,
        source: str = "pixel",
    ) -> tuple[Hit | None, bool]:
        """The pixel's decision: (the hit to accept, or None when it was dropped and
        counted; whether its answer sets the visitor cookie).  ``GET /r`` decides its
        click the same way (``params`` given, ``source`` redirect)."""
        try:
            if self._rate_limited(scope):
                raise Drop("rate_limited")
            if params is None:
                params = parse_qs(scope.get("query_string", b""))
            req = self.request_info(scope, headers, source)
            cookieless = self._cookieless(params, req)
            hit = build_hit(params, cookieless or req, self.settings)
            refused = self._refused_by_privacy(headers, hit.site)
            if refused:
                raise Drop(refused)
        except Drop as drop:
            if drop.reason != "rate_limited":  # already counted
                METRICS.inc("hits_dropped_total", reason=drop.reason)
            return None, False
        return hit, cookieless is None

    def pixel_cookie(
        self, hit: Hit | None, set_cookie: bool, accepted: bool | None, scope: Scope
    ) -> tuple[bytes, bytes] | None:
        """Count an accepted pixel and give its Set-Cookie header (None: no cookie).
        ``accepted`` False: spool full, dropped and counted by the sink; a browser cannot
        retry an image, so it still gets the GIF."""
        if hit is None or accepted is False:
            return None
        METRICS.inc("hits_accepted_total", source=hit.source)
        return self._set_cookie(hit.visitor_id, scope) if set_cookie else None

    def pixel_headers(
        self, hit: Hit | None, set_cookie: bool, accepted: bool | None, scope: Scope
    ) -> list[tuple[bytes, bytes]]:
        """The GIF's headers once the sink has answered."""
        cookie = self.pixel_cookie(hit, set_cookie, accepted, scope)
        return [*GIF_HEADERS, cookie] if cookie else list(GIF_HEADERS)

    async def pixel(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit, set_cookie = self.pixel_hit(scope, header_map(scope))
        accepted = None if hit is None else await self.put([hit])
        out_headers = self.pixel_headers(hit, set_cookie, accepted, scope)
        await send({"type": "http.response.start", "status": 200, "headers": out_headers})
        await send({"type": "http.response.body", "body": GIF})

    async def beacon(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = header_map(scope)
        cors = self._cors(headers)
        if scope["method"] != "OPTIONS" and self._rate_limited(scope):
            await _json(
                send,
                429,
                {"errors": ["rate limited: too many hits from this address"]},
                cors + [(b"retry-after", b"1")],
            )
            return
        if scope["method"] == "OPTIONS":
            await _respond(send, 204, cors + [(b"access-control-max-age", b"86400")])
            return
        if scope["method"] != "POST":
            allow = [(b"allow", b"POST, OPTIONS")]  # RFC 9110 15.5.6: a 405 names them
            await _json(send, 405, {"errors": ["use POST"]}, cors + allow)
            return
        limit = self.settings.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            METRICS.inc("hits_dropped_total", reason="body_too_large")
            await _json(send, 413, {"errors": [f"body larger than {limit} bytes"]}, cors)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                METRICS.inc("hits_dropped_total", reason="body_too_large")
                await _json(send, 413, {"errors": [f"body larger than {limit} bytes"]}, cors)
                return
            if not message.get("more_body"):
                break
        errors, reason, hits = self._parse_body(bytes(body), scope, headers)
        if errors:
            METRICS.inc("beacon_rejected_total", reason=reason)
            await _json(send, 400, {"errors": errors}, cors)
            return
        origin = headers.get(b"origin", b"").decode("latin-1")
        allowed = [h for h in hits if not origin or self._origin_allowed(origin, h.site)]
        if len(allowed) < len(hits):  # CORS hides the answer; this keeps the data out too
            METRICS.inc("hits_dropped_total", len(hits) - len(allowed), reason="origin_not_allowed")
            if not allowed:  # the answer is the events' sites', not another site's
                cors = [(b"vary", b"Origin")]
        accepted = []
        for h in allowed:  # counted under the pixel's reasons: opt_out, dnt
            refused = self._refused_by_privacy(headers, h.site)
            if refused:
                METRICS.inc("hits_dropped_total", reason=refused)
            else:
                accepted.append(h)
        if accepted:
            if (
                await self.put(accepted) is False
            ):  # spool full: dropped and counted; the tracker retries
                await _json(
                    send,
                    503,
                    {"errors": ["collector overloaded, retry later"]},
                    cors + [(b"retry-after", b"30")],
                )
                return
            METRICS.inc("hits_accepted_total", len(accepted), source="beacon")
            if not self.settings.for_site(accepted[0].site).cookieless:
                cors = cors + [self._set_cookie(accepted[0].visitor_id, scope)]
        await _respond(send, 204, cors)

    def _parse_body(
        self, body: bytes, scope: Scope, headers: dict[bytes, bytes]
    ) -> tuple[list[str], str, list[Any]]:
        """(errors, the first error's reason, hits): no errors, or a rejected body whose
        reason labels ``beacon_rejected_total`` (a fixed set of names, never an index)."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return ["body: not valid JSON (UTF-8)"], "not_json", []
        events = doc if isinstance(doc, list) else [doc]
        if not events:
            return ["body: empty array"], "empty_batch", []
        if len(events) > self.settings.max_batch_events:
            limit = self.settings.max_batch_events
            return [f"body: more than {limit} events"], "too_many_events", []
        errors: list[str] = []
        reason = ""
        hits: list[Hit] = []
        req = self.request_info(scope, headers, "beacon")
        for i, event in enumerate(events):
            if not isinstance(event, dict):
                errors.append(f"event {i}: not an object")
                reason = reason or "not_object"
                continue
            try:
                params = normalize(event)
                if len(params) > 200:
                    raise Drop("too_many_params")
                hit = build_hit(params, self._cookieless(params, req) or req, self.settings)
            except Drop as drop:
                errors.append(f"event {i}: {drop.reason}: {drop.detail}")
                reason = reason or drop.reason
                METRICS.inc("hits_dropped_total", reason=drop.reason)
                continue
            if hits:  # one request, one visitor: keep the batch on one key
                hit.visitor_id = hits[0].visitor_id
            hits.append(hit)
        return errors, reason, hits

    def _cors(self, headers: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        origin = headers.get(b"origin")
        if not origin:
            return []
        text = origin.decode("latin-1")
        sites = ("", *self.settings.configured_sites)  # preflight: any site's own origins
        if not any(self._origin_allowed(text, site) for site in sites):
            return []
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", b"content-type"),
            (b"vary", b"Origin"),
        ]

    def _origin_allowed(self, origin: str, site: str) -> bool:
        """Per-site ``allowed_origins`` (``*``: any); site "" is the global setting."""
        allowed = (self.settings.for_site(site) if site else self.settings).allowed_origins
        return allowed.strip() == "*" or origin in {o.strip() for o in allowed.split(",")}


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": headers + [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, doc: Any, headers: list[tuple[bytes, bytes]]) -> None:
    await _respond(
        send, status, headers + [(b"content-type", b"application/json")], orjson.dumps(doc)
    )
