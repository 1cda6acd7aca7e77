"""Overview: totals, time series, top pages and the session breakdowns."""

from __future__ import annotations

from reports.query import ReportQuery
from reports.sql.common import PAGE_EVENTS, Statement, table, where

# breakdown name -> sessions column expression (our constants, not user text)
BREAKDOWNS = (
    ("entry_pages", "entry_path"),
    ("exit_pages", "exit_path"),
    ("channels", "channel"),
    ("referrers", "domain(referrer)"),
    ("devices", "device_type"),
    ("browsers", "browser"),
    ("countries", "country"),
)


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = q.params()
    sw = where(q, db, "start_ts")
    bucket = "toStartOfHour(start_ts)" if q.interval == "hour" else "toDate(start_ts)"
    pairs = ", ".join(f"('{name}', toString({expr}))" for name, expr in BREAKDOWNS)
    return [
        Statement(
            "totals",
            f"""SELECT uniqExact(visitor_id) AS visitors, count() AS sessions,
                sum(pageviews) AS pageviews, avg(is_bounce) AS bounce_rate,
                quantileExactInclusive(0.5)(duration_s) AS median_session_seconds
            FROM {table(db, "sessions")} WHERE {sw}""",
            p,
        ),
        Statement(
            "series",
            f"""SELECT {bucket} AS t, uniqExact(visitor_id) AS visitors, count() AS sessions,
                sum(pageviews) AS pageviews
            FROM {table(db, "sessions")} WHERE {sw} GROUP BY t ORDER BY t""",
            p,
        ),
        Statement(
            "top_pages",
            f"""SELECT page, count() AS pageviews, uniqExact(visitor_id) AS visitors
            FROM {table(db, "hits")} WHERE {where(q, db, "ts")} AND {PAGE_EVENTS} AND page != ''
            GROUP BY page ORDER BY pageviews DESC, page LIMIT {{limit:UInt32}}""",
            {**p, "limit": q.limit},
        ),
        Statement(
            "breakdowns",
            f"""SELECT kv.1 AS dimension, kv.2 AS value, count() AS sessions,
                uniqExact(visitor_id) AS visitors
            FROM {table(db, "sessions")}
            ARRAY JOIN arrayFilter(x -> NOT (x.1 = 'referrers' AND x.2 = ''), [{pairs}]) AS kv
            WHERE {sw}
            GROUP BY dimension, value ORDER BY dimension, sessions DESC, value
            LIMIT {{limit:UInt32}} BY dimension""",
            {**p, "limit": q.limit},
        ),
    ]
