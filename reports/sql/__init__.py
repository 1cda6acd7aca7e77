"""SQL builders, one module per report; no I/O here."""

from __future__ import annotations

from collections.abc import Callable

from reports.query import ReportQuery
from reports.sql import backloops, customers, funnel, overview, paths, returning, searches
from reports.sql.common import Statement

BUILDERS: dict[str, Callable[[ReportQuery, str], list[Statement]]] = {
    "overview": overview.build,
    "funnel": funnel.build,
    "returning": returning.build,
    "paths": paths.build,
    "searches": searches.build,
    "backloops": backloops.build,
    "customers": customers.build,
}


def build(q: ReportQuery, database: str) -> list[Statement]:
    return BUILDERS[q.name](q, database)


__all__ = ["BUILDERS", "Statement", "build"]
