"""Operational API: health, metrics, read-only SQL, flush. Admin routes: ``require_scope("admin")``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from clickstream import broker, warehouse
from clickstream.auth import require_scope
from clickstream.metrics import METRICS
from clickstream.sqlguard import SQLRefused, check_read_only

MAX_SQL_BODY = 64 * 1024
Endpoint = Callable[[Request], Awaitable[Response]]


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS)


def error(status: int, message: str) -> Response:
    return ORJSONResponse({"error": message}, status_code=status)


async def healthz(request: Request) -> Response:
    state = request.app.state
    checks: dict[str, str] = {}
    sink = getattr(state, "sink", None)
    bootstrap = getattr(state, "bootstrap", "")
    if sink is not None and sink.spooling:
        checks["broker"] = "spooling"
    elif sink is not None or (bootstrap and getattr(state, "sessionizer", None) is not None):
        checks["broker"] = await _broker_check(state, bootstrap) if bootstrap else "ok"
    sessionizer = getattr(state, "sessionizer", None)
    if sessionizer is not None:
        checks["sessionizer"] = (
            "ok"
            if sessionizer.running and not sessionizer.last_error
            else (sessionizer.last_error or "not running")
        )
    client = getattr(state, "warehouse", None)
    if client is not None:
        try:
            await run_in_threadpool(warehouse.read_query, client, "SELECT 1", comment="healthz")
            checks["warehouse"] = "ok"
        except Exception as exc:
            checks["warehouse"] = f"unreachable: {str(exc)[:200]}"
    ok = all(v == "ok" for v in checks.values())
    return ORJSONResponse({"ok": ok, "checks": checks}, status_code=200 if ok else 503)


async def _broker_check(state: Any, bootstrap: str) -> str:
    """A metadata round trip to Kafka, at most once a second (a load balancer polls often)."""
    now = time.monotonic()
    cached = getattr(state, "broker_check", None)
    if cached is not None and now - cached[0] < 1.0:
        return str(cached[1])
    reason = await broker.unreachable(bootstrap)
    state.broker_check = (time.monotonic(), reason or "ok")
    return reason or "ok"


async def metrics(request: Request) -> Response:
    """Prometheus text; with collector workers, their counters are summed in."""
    workers = getattr(request.app.state, "workers", None)
    merged = METRICS.merged(await workers.snapshots()) if workers is not None else METRICS
    return PlainTextResponse(merged.render(), media_type="text/plain; version=0.0.4")


@require_scope("admin")
async def sql(request: Request) -> Response:
    body = await _body(request, MAX_SQL_BODY)
    if body is None:
        return error(413, f"SQL body larger than {MAX_SQL_BODY} bytes")
    try:
        statement = check_read_only(body.decode("utf-8"))
    except UnicodeDecodeError:
        return error(400, "SQL body is not UTF-8")
    except SQLRefused as exc:
        return error(400, str(exc))
    try:
        result = await run_in_threadpool(
            warehouse.read_query,
            request.app.state.warehouse,
            statement,
            None,
            "api:sql",
            {"max_result_rows": 100_000, "result_overflow_mode": "break", "max_execution_time": 60},
        )
    except Exception as exc:
        return error(400, _clickhouse_message(exc))
    return ORJSONResponse({"columns": result.columns, "rows": result.rows})


def _clickhouse_message(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:500]


@require_scope("admin")
async def flush(request: Request) -> Response:
    sessionizer = getattr(request.app.state, "sessionizer", None)
    if sessionizer is None:
        return error(409, "no sessionizer in this process")
    await sessionizer.flush()
    return ORJSONResponse({"flushed": True})


async def _body(request: Request, limit: int) -> bytes | None:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/api/sql", sql, methods=["POST"]),
        Route("/api/flush", flush, methods=["POST"]),
    ]
