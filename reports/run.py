"""Run a report: the one code path behind the JSON API, the CSV download and the CLI.

``run(ReportQuery.parse(name, params), client)`` builds the statements
(:mod:`reports.sql`), runs each read-only with a ``log_comment`` naming the report
(:func:`clickstream.warehouse.read_query`), and shapes the rows (:mod:`reports.shape`).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from clickstream.warehouse import read_query
from reports import shape, sql
from reports.query import REPORT_NAMES, QueryError, ReportQuery

REPORTS = REPORT_NAMES
# the table a CSV download (or the CLI's table format) shows when none is named
MAIN_TABLE = {
    "overview": "series",
    "funnel": "steps",
    "returning": "days",
    "paths": "top_paths",
    "searches": "terms",
    "backloops": "pages",
    "customers": "customers",
}

_VALUE = ("value", "sessions", "visitors")
_TERM = (
    "term",
    "searches",
    "visitors",
    "zero_results",
    "exits",
    "dead_ends",
    "pogo_sticks",
    "avg_results",
    "success_rate",
)
_CUSTOMER = (
    "crm_id",
    "visitors",
    "devices",
    "sessions",
    "revenue",
    "recency_days",
    "r",
    "f",
    "m",
    "segment",
    "sessions_total",
    "cadence_days",
    "at_risk",
)
_BACKLOOP = ("back_loops", "quick_backs", "back_button", "sessions")
# each table's columns as reports.shape writes them: the header of a CSV without rows (a
# spreadsheet import or a script reading the columns by name still finds them)
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "overview": {
        "series": ("t", "visitors", "sessions", "pageviews"),
        "top_pages": ("page", "pageviews", "visitors"),
        **{t: _VALUE for t in shape.OVERVIEW_BREAKDOWNS},
    },
    "funnel": {
        "steps": (
            "step",
            "count",
            "conversion",
            "dropoff",
            "dropoff_rate",
            "median_seconds_from_previous",
        ),
        "breakdown": ("value", "counts", "conversion"),
        "dropoff_next": ("after_step", "next_page", "count"),
    },
    "returning": {
        "days": ("date", "new_visitors", "returning_visitors"),
        "cohorts": ("cohort", "weeks", "visitors", "retention"),
        "frequency": ("sessions", "visitors"),
        "days_since_last_visit": ("days", "sessions"),
    },
    "paths": {
        "top_paths": ("path", "sessions", "visitors"),
        "previous": ("page", "count", "share"),
        "next": ("page", "count", "share"),
    },
    "searches": {
        "terms": _TERM,
        "zero_result_terms": _TERM,
        "search_exits": _TERM,
        "refinements": ("term", "next_term", "n"),
        "pogo_sticking": ("term", "pogo_sticks"),
    },
    "backloops": {"pages": ("page", *_BACKLOOP), "pairs": ("a", "b", *_BACKLOOP)},
    "customers": {
        "customers": _CUSTOMER,
        "at_risk": _CUSTOMER,
        "timeline": (
            "session_id",
            "visitor_id",
            "start_ts",
            "duration_s",
            "pageviews",
            "entry_path",
            "exit_path",
            "channel",
            "device_type",
            "browser",
            "revenue",
            "identified",
        ),
    },
}


def comment(q: ReportQuery, key: str) -> str:
    return f"clickstream report {q.name} {key}"


def run(query: ReportQuery, client: Client, database: str = "clickstream") -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    started = time.perf_counter()
    for st in sql.build(query, database):
        # no extra settings: a server may refuse to change settings under readonly=1
        res = read_query(client, st.sql, st.params, comment=comment(query, st.key))
        results[st.key] = [dict(zip(res.columns, row, strict=True)) for row in res.rows]
    out = shape.SHAPERS[query.name](query, results)
    out["query"] = {
        "report": query.name,
        "site": query.site,
        "from": query.date_from.isoformat(),
        "to": query.date_to.isoformat(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return out


def sites(client: Client, database: str = "clickstream") -> list[str]:
    st = sql.common.sites(database)
    res = read_query(client, st.sql, st.params, comment="clickstream report sites")
    return [row[0] for row in res.rows]


def tables(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The result's tables (lists of flat dicts), by name."""
    return {
        k: v
        for k, v in result.items()
        if isinstance(v, list) and all(isinstance(r, dict) for r in v)
    }


def pick_table(query: ReportQuery, result: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    name = query.table or MAIN_TABLE[query.name]
    found = tables(result)
    if name not in found:
        raise QueryError(f"report {query.name} has no table {name!r}; tables: {', '.join(found)}")
    return name, found[name]


def table_csv(query: ReportQuery, result: dict[str, Any]) -> tuple[str, str]:
    """The table a CSV download names (or the report's main one) and its CSV, with the
    header row even when the table has no rows."""
    name, rows = pick_table(query, result)
    return name, to_csv(rows, COLUMNS.get(query.name, {}).get(name, ()))


def to_csv(rows: list[dict[str, Any]], columns: Sequence[str] = ()) -> str:
    """``columns``: the header when there are no rows (else the first row's keys)."""
    buf = io.StringIO()
    if not rows and not columns:
        return ""
    columns = list(rows[0]) if rows else list(columns)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # a path reads a > b; numbers (counts, weeks) are spaced
        sep = " > " if all(isinstance(v, str) for v in value) else " "
        value = sep.join("" if v is None else str(v) for v in value)
    text = str(value)
    # spreadsheet formula injection: a cell starting with = + - @ is shown as text
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
