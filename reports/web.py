"""HTTP: the JSON/CSV report API and the dashboard page, as Starlette routes.

The app provides ``app.state.warehouse`` (a clickhouse-connect client) and
``app.state.settings`` (``settings.database``).  Queries block, so they run in the
thread pool; the chDB lock in :mod:`clickstream.warehouse` serialises them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from clickhouse_connect.driver.exceptions import ClickHouseError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clickstream.auth import require_scope
from reports.query import REPORT_NAMES, QueryError, parse_for_site
from reports.run import run, sites, table_csv

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def _database(request: Request) -> str:
    return str(getattr(request.app.state.settings, "database", "clickstream"))


@require_scope("read")
async def report(request: Request) -> Response:
    name = request.path_params["name"]
    params = {k: request.query_params.getlist(k) for k in request.query_params}
    try:
        query = parse_for_site(name, params, request.app.state.settings)
    except QueryError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400 if name in REPORT_NAMES else 404)
    try:
        result = await run_in_threadpool(
            run, query, request.app.state.warehouse, _database(request)
        )
    except ClickHouseError as exc:
        log.warning("report %s failed: %s", name, exc)
        return JSONResponse(
            {"error": f"the warehouse could not run report {name}"}, status_code=503
        )
    if query.format == "csv":
        try:
            table, text = table_csv(query, result)
        except QueryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        filename = f"{name}-{table}-{query.date_from}-{query.date_to}.csv"
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return JSONResponse(result)


@require_scope("read")
async def index(request: Request) -> Response:
    try:
        names = await run_in_threadpool(sites, request.app.state.warehouse, _database(request))
    except ClickHouseError as exc:
        log.warning("listing sites failed: %s", exc)
        names = []
    today = datetime.now(UTC).date().isoformat()
    return JSONResponse({"reports": list(REPORT_NAMES), "sites": names, "today": today})


_PAGE: str | None = None


@require_scope("read")
async def dashboard(request: Request) -> Response:
    global _PAGE
    if _PAGE is None:
        _PAGE = resources.files("reports").joinpath("templates/dashboard.html").read_text()
    return HTMLResponse(_PAGE, headers={"Cache-Control": "no-cache"})


routes: list[Route | Mount] = [
    Route("/", dashboard, methods=["GET"]),
    Route("/api/reports", index, methods=["GET"]),
    Route("/api/reports/{name}", report, methods=["GET"]),
    Mount("/reports/static", app=StaticFiles(directory=STATIC), name="reports-static"),
]
