"""Collector routes besides the hot path: tracker script, opt-out, click redirect."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
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


async def tracker_js(request: Request) -> Response:
    path = STATIC / "t.js"
    if not path.exists():
        return PlainTextResponse("/* tracker not built */", status_code=404)
    return FileResponse(
        path,
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
    )


async def optout(request: Request) -> Response:
    undo = request.query_params.get("undo") == "1"
    text = (
        "Tracking is back on for this browser."
        if undo
        else "You are opted out: this browser is no longer tracked."
    )
    response = HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>Opt-out</title><p>{text}</p>"
    )
    if undo:
        response.delete_cookie(OPTOUT, path="/")
    else:
        # not HttpOnly: the tracker reads it to stay silent
        response.set_cookie(
            OPTOUT,
            "1",
            max_age=TWO_YEARS,
            path="/",
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


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
        Route("/optout", optout),
        Route(
            "/api/snippet", require_scope("read")(snippet.api_snippet)
        ),  # the dashboard Install page
        redirect_route(collector),
    ]
