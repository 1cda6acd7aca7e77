"""The OpenAPI 3.1 description of the public HTTP routes, served at ``GET /openapi.json``.

Written by hand from DESIGN.md (the routes are raw ASGI or plain Starlette, nothing
to introspect); the fuzz tests generate requests from it, so a route listed here
is a route that is fuzzed.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

_S = {"type": "string"}
_I = {"type": "integer", "minimum": 0}


def _q(name: str, schema: dict[str, Any], text: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": text,
    }


HIT_PARAMS = [
    _q("s", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}, "site id", True),
    _q("u", {"type": "string", "maxLength": 2000}, "page URL (default: Referer)"),
    _q("r", _S, "referrer"),
    _q("e", {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}, "event (default pageview)"),
    _q("t", _S, "title"),
    _q("q", _S, "site-search query"),
    _q("n", _I, "search result count"),
    _q("uid", {"type": "string", "maxLength": 128}, "CRM id"),
    _q(
        "vid", {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"}, "visitor id from a JS cookie"
    ),
    _q("cts", _I, "client created, epoch ms"),
    _q("sts", _I, "client sent, epoch ms"),
    _q(
        "nav", {"type": "string", "enum": ["navigate", "reload", "back_forward"]}, "navigation type"
    ),
    *[
        _q(f"utm_{k}", _S, f"campaign {k}")
        for k in ("source", "medium", "campaign", "term", "content")
    ],
    _q("x_revenue", _S, "custom prop (any x_*; x_revenue is summed into sessions.revenue)"),
]
EVENT = {
    "type": "object",
    "description": "One event: the pixel's parameters, long names allowed (url, referrer, event, ...), "
    "`props` an object of strings/numbers, `ua` overrides the User-Agent.",
    "properties": {p["name"]: p["schema"] for p in HIT_PARAMS}
    | {
        "props": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "ua": _S,
    },
    "required": ["s"],
}
ERRORS = {"type": "object", "properties": {"errors": {"type": "array", "items": _S}}}
ERROR = {"type": "object", "properties": {"error": _S}}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _json(schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": schema}}}


def spec() -> dict[str, Any]:
    gif = {"description": "always a 1x1 transparent GIF", "content": {"image/gif": {}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Clickstream", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/p.gif": {
                "get": {
                    "summary": "The web bug",
                    "parameters": HIT_PARAMS,
                    "responses": {"200": gif},
                }
            },
            "/collect": {
                "post": {
                    "summary": "Beacon: one event or an array of events",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        EVENT,
                                        {"type": "array", "items": EVENT, "maxItems": 100},
                                    ]
                                }
                            },
                            "text/plain": {"schema": _S},
                        },
                    },
                    "responses": {
                        "204": {"description": "accepted"},
                        "400": _json(ERRORS, "bad body"),
                        "413": _json(ERRORS, "body too large"),
                        "503": _json(ERRORS, "spool full: retry later (Retry-After)"),
                    },
                }
            },
            "/r": {
                "get": {
                    "summary": "Click redirect to an allow-listed host",
                    "parameters": [*HIT_PARAMS, _q("to", _S, "target URL", True)],
                    "responses": {
                        "302": {"description": "to the target"},
                        "400": {"description": "target not allowed"},
                    },
                }
            },
            "/t.js": {
                "get": {
                    "summary": "The tracker script",
                    "responses": {
                        "200": {"description": "JavaScript"},
                        "304": {"description": "not modified (If-None-Match)"},
                        "404": {"description": "not built"},
                    },
                }
            },
            "/optout": {
                "get": {
                    "summary": "Opt this browser out (undo=1: back in)",
                    "parameters": [_q("undo", {"type": "string", "enum": ["1"]}, "opt back in")],
                    "responses": {"200": {"description": "HTML"}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "200 when broker, sessionizer and warehouse are reachable",
                    "responses": {
                        "200": _json({"type": "object"}, "healthy"),
                        "503": _json({"type": "object"}, "a check failed"),
                    },
                }
            },
            "/metrics": {
                "get": {"summary": "Prometheus text", "responses": {"200": {"description": "text"}}}
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "JSON"}}}
            },
            "/api/sql": {
                "post": {
                    "summary": "Read-only SQL",
                    "security": BEARER,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "text/plain": {"schema": {"type": "string", "maxLength": 65536}}
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "columns": {"type": "array"},
                                    "rows": {"type": "array"},
                                },
                            },
                            "result",
                        ),
                        "400": _json(ERROR, "refused or failed"),
                        "401": _json(ERROR, "no token"),
                        "413": _json(ERROR, "too large"),
                    },
                }
            },
            "/api/flush": {
                "post": {
                    "summary": "Close all open sessions now",
                    "security": BEARER,
                    "responses": {
                        "200": _json({"type": "object"}, "flushed"),
                        "401": _json(ERROR, "no token"),
                    },
                }
            },
        },
    }


async def endpoint(request: Request) -> Response:
    return Response(orjson.dumps(spec()), media_type="application/json")
