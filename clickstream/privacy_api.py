"""Admin HTTP API of the identity graph and data rights (all need an admin token).

``POST /api/identify``        {"site", "visitor_id", "crm_id"}  → the change
``POST /api/identify/merge``  {"site", "from_crm", "into_crm"}  → the change
``POST /api/identify/undo``   {"site", "change_id"}             → the change
``POST /api/erase``           {"site", "visitor_id" | "crm_id"} → {"deleted": {table: rows}, …}
``GET  /api/export?site=S&crm_id=C`` (or ``visitor_id=V``)       → every row, as JSON
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clickstream import erase as erase_mod
from clickstream import identity
from clickstream.api import ORJSONResponse, _body, _clickhouse_message, error
from clickstream.auth import require_scope

MAX_BODY = 16 * 1024
log = logging.getLogger("clickstream.privacy")


async def _json_body(request: Request, fields: tuple[str, ...]) -> dict[str, Any] | Response:
    body = await _body(request, MAX_BODY)
    if body is None:
        return error(413, f"body larger than {MAX_BODY} bytes")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return error(400, "body must be a JSON object")
    if not isinstance(doc, dict):
        return error(400, "body must be a JSON object")
    unknown = set(doc) - set(fields)
    if unknown:
        return error(400, f"unknown fields {sorted(unknown)}; accepted: {', '.join(fields)}")
    return doc


async def _run(request: Request, fn: Callable[..., Any], *args: Any) -> Response:
    state = request.app.state
    try:
        result = await run_in_threadpool(fn, state.warehouse, state.settings.database, *args)
    except identity.IdentityError as exc:
        return error(400, str(exc))
    except Exception as exc:  # ClickHouse refused or is away: say so, no traceback
        log.warning("%s failed: %s", fn.__name__, exc)
        return error(503, f"warehouse error: {_clickhouse_message(exc)}")
    return ORJSONResponse(result.as_dict() if isinstance(result, identity.Change) else result)


@require_scope("admin")
async def identify(request: Request) -> Response:
    doc = await _json_body(request, ("site", "visitor_id", "crm_id"))
    if isinstance(doc, Response):
        return doc
    answer = await _run(
        request,
        identity.link,
        doc.get("site"),
        doc.get("visitor_id"),
        doc.get("crm_id"),
        request.state.actor,
    )
    sz = getattr(request.app.state, "sessionizer", None)
    if answer.status_code == 200 and sz is not None:  # its later sessions carry the CRM id
        sz.relink(str(doc["site"]), str(doc["visitor_id"]), str(doc["crm_id"]))
    return answer


@require_scope("admin")
async def merge(request: Request) -> Response:
    doc = await _json_body(request, ("site", "from_crm", "into_crm"))
    if isinstance(doc, Response):
        return doc
    return await _run(
        request,
        identity.merge,
        doc.get("site"),
        doc.get("from_crm"),
        doc.get("into_crm"),
        request.state.actor,
    )


@require_scope("admin")
async def undo(request: Request) -> Response:
    doc = await _json_body(request, ("site", "change_id"))
    if isinstance(doc, Response):
        return doc
    return await _run(
        request, identity.undo, doc.get("site"), doc.get("change_id"), request.state.actor
    )


@require_scope("admin")
async def erase(request: Request) -> Response:
    doc = await _json_body(request, ("site", "visitor_id", "crm_id"))
    if isinstance(doc, Response):
        return doc
    done: list[erase_mod.Erasure] = []

    def erase_person(
        client: Any, db: str, site: Any, visitor_id: str, crm_id: str, actor: str
    ) -> dict[str, Any]:
        done.append(erase_mod.erase_person(client, db, site, visitor_id, crm_id, actor))
        return done[0].answer()

    answer = await _run(
        request,
        erase_person,
        doc.get("site"),
        doc.get("visitor_id") or "",
        doc.get("crm_id") or "",
        request.state.actor,
    )
    sz = getattr(request.app.state, "sessionizer", None)
    if done and sz is not None:  # on this loop, between two folds: its memory forgets them
        sz.forget(done[0].site, done[0].visitor_ids, done[0].at_ms)
    return answer


@require_scope("admin")
async def export(request: Request) -> Response:
    q = request.query_params
    unknown = set(q) - {"site", "visitor_id", "crm_id"}
    if unknown:
        return error(400, f"unknown parameters {sorted(unknown)}")
    state = request.app.state
    try:
        doc = await run_in_threadpool(
            erase_mod.export,
            state.warehouse,
            state.settings.database,
            q.get("site", ""),
            q.get("visitor_id", ""),
            q.get("crm_id", ""),
        )
    except identity.IdentityError as exc:
        return error(400, str(exc))
    return Response(
        erase_mod.export_json(doc),
        media_type="application/json",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": 'attachment; filename="clickstream-export.json"',
        },
    )


def routes() -> list[Route]:
    return [
        Route("/api/identify", identify, methods=["POST"]),
        Route("/api/identify/merge", merge, methods=["POST"]),
        Route("/api/identify/undo", undo, methods=["POST"]),
        Route("/api/erase", erase, methods=["POST"]),
        Route("/api/export", export, methods=["GET"]),
    ]
