"""Overview: totals, time series and session breakdowns in one scan of sessions; top pages."""

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
    p = {**q.params(), "limit": q.limit}
    bucket = "toStartOfHour(start_ts)" if q.interval == "hour" else "toDate(start_ts)"
    pairs = ", ".join(f"('{name}', toString({expr}))" for name, expr in BREAKDOWNS)
    # every session is counted once under 'total', once under its 'series' bucket and once
    # per breakdown; 'total' and 'series' rows are never cut by the limit
    return [
        Statement(
            "sessions",
            f"""SELECT dimension, value, sessions, visitors, pageviews, bounce_rate,
                median_session_seconds FROM (
                SELECT kv.1 AS dimension, kv.2 AS value, count() AS sessions,
                    -- exact for the headline; uniq (exact below ~65k) for breakdown rows
                    if(dimension = 'total', uniqExactIf(visitor_id, kv.1 = 'total'),
                       uniqIf(visitor_id, kv.1 != 'total')) AS visitors,
                    sum(pageviews) AS pageviews,
                    avg(is_bounce) AS bounce_rate,
                    quantileExactInclusiveIf(0.5)(duration_s, kv.1 = 'total') AS median_session_seconds,
                    row_number() OVER (PARTITION BY dimension ORDER BY sessions DESC, value) AS k
                FROM {table(db, "sessions")}
                ARRAY JOIN arrayFilter(x -> NOT (x.1 = 'referrers' AND x.2 = ''),
                    [('total', ''), ('series', toString({bucket})), {pairs}]) AS kv
                WHERE {where(q, db, "start_ts")}
                GROUP BY dimension, value
            ) WHERE dimension IN ('total', 'series') OR k <= {{limit:UInt32}}
            ORDER BY dimension, sessions DESC, value""",
            p,
        ),
        Statement(
            "top_pages",
            f"""SELECT page, count() AS pageviews, uniq(visitor_id) AS visitors
            FROM {table(db, "hits")} WHERE {where(q, db, "ts")} AND {PAGE_EVENTS} AND page != ''
            GROUP BY page ORDER BY pageviews DESC, page LIMIT {{limit:UInt32}}""",
            p,
        ),
    ]
