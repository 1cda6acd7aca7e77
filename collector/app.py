"""Collector routes besides the hot path: tracker script, opt-out, click redirect."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from clickstream.auth import require_scope
from clickstream.metrics import METRICS
from collector import snippet
from collector.hot import OPTOUT, TWO_YEARS, Collector, header_map

STATIC = Path(__file__).parent / "static"


_tracker: tuple[float, bytes, str] = (0.0, b"", "")  # (mtime, script, content hash)


def _tracker_script() -> tuple[bytes, str] | None:
    """The built tracker and the hash of its bytes (its version), re-read when it changes."""
    global _tracker
    try:
        mtime = (STATIC / "t.js").stat().st_mtime
        if mtime != _tracker[0]:
            body = (STATIC / "t.js").read_bytes()
            _tracker = (mtime, body, hashlib.sha256(body).hexdigest()[:16])
    except OSError:
        return None
    return _tracker[1], _tracker[2]


def _etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag, compared weakly."""
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


async def tracker_js(request: Request) -> Response:
    """The tracker, cacheable and versioned: its ETag is the hash of its bytes, a
    revalidation answers 304; ``/t.js?v=<that hash>`` names one version and is immutable."""
    found = _tracker_script()
    if found is None:
        return PlainTextResponse("/* tracker not built */", status_code=404)
    body, version = found
    etag = f'"{version}"'
    immutable = request.query_params.get("v") == version
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable"
        if immutable
        else "public, max-age=3600",
        "ETag": etag,
        "Access-Control-Allow-Origin": "*",
    }
    if _etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/javascript", headers=headers)


def optout_route(collector: Collector) -> Route:
    async def optout(request: Request) -> Response:
        """GET /optout sets ``_cs_optout=1`` (``?undo=1`` removes it) with the visitor
        cookie's Domain and SameSite: a collector on another site (``cookie_third_party``)
        only sees a ``SameSite=None`` cookie on the pixels of the tracked pages, and the
        tracker only reads one whose ``Domain`` covers its page (``cookie_domain``)."""
        undo = request.query_params.get("undo") == "1"
        text = (
            "Tracking is back on for this browser."
            if undo
            else "You are opted out: this browser is no longer tracked."
        )
        response = HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>Opt-out</title><p>{text}</p>"
        )
        # not HttpOnly: the tracker reads it to stay silent
        value, max_age = ("", 0) if undo else ("1", TWO_YEARS)
        response.raw_headers.append(collector.cookie(OPTOUT, value, max_age, request.scope))
        return response

    return Route("/optout", optout)


def redirect_route(collector: Collector) -> Route:
    async def redirect(request: Request) -> Response:
        """GET /r?s=SITE&to=URL: record the click, then 302 to an allow-listed host only."""
        site = request.query_params.get("s", "")
        target = request.query_params.get("to", "")
        settings = collector.settings.for_site(site)
        allowed = {h.strip().lower() for h in settings.redirect_hosts.split(",") if h.strip()}
        try:
            host = (urlsplit(target).hostname or "").lower()
        except ValueError:
            host = ""
        if not target.startswith(("http://", "https://")) or host not in allowed:
            METRICS.inc("redirects_refused_total")
            return PlainTextResponse("redirect target not allowed", status_code=400)
        params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != "to"}
        params.setdefault("e", "click")
        params["u"] = target
        # the pixel's rules: opt-out and DNT drop the click, the visitor cookie is refreshed
        hit, set_cookie = collector.pixel_hit(
            request.scope, header_map(request.scope), params, "redirect"
        )
        accepted = None if hit is None else await collector.put([hit])  # False: spool full
        response = RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
        cookie = collector.pixel_cookie(hit, set_cookie, accepted, request.scope)
        if cookie is not None:
            response.raw_headers.append(cookie)
        return response

    return Route("/r", redirect)


def routes(collector: Collector) -> list[Route]:
    return [
        Route("/t.js", tracker_js),
        optout_route(collector),
        Route(
            "/api/snippet", require_scope("read")(snippet.api_snippet)
        ),  # the dashboard Install page
        redirect_route(collector),
    ]
