"""Overview: exact totals (visitors by `visitor_hash`); the time series and session breakdowns
in one GROUPING SETS scan; top pages from hits, visitors counted for the top pages only."""

from __future__ import annotations

from reports.query import ReportQuery
from reports.sql.common import PAGE_EVENTS, Statement, day, table, where

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
SETS = ("series",) + tuple(name for name, _ in BREAKDOWNS)


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = {**q.params(), "limit": q.limit}
    sw = where(q, db, "start_ts")
    hw = f"{where(q, db, 'ts')} AND {PAGE_EVENTS}"
    bucket = "toStartOfHour(start_ts)" if q.interval == "hour" else day(q, "start_ts")
    # grouped on the columns themselves (LowCardinality ones on their dictionary indexes);
    # only the few result rows are turned into text
    keys = [bucket] + [expr for _, expr in BREAKDOWNS]
    cols = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys))
    names = [f"k{i}" for i in range(len(keys))]
    # grouping(k0..kn) has bit (n - i) set when k_i is not in the row's set: one set per key
    which = (
        "multiIf("
        + "".join(f"g = {_mask(i, len(keys))}, '{name}', " for i, name in enumerate(SETS))
        + "'')"
    )
    value = (
        "multiIf("
        + "".join(f"g = {_mask(i, len(keys))}, toString(k{i}), " for i in range(len(keys)))
        + "'')"
    )
    return [
        Statement(
            "totals",
            f"""SELECT uniqExact(visitor_hash) AS visitors, count() AS sessions,
                sum(pageviews) AS pageviews, avg(is_bounce) AS bounce_rate,
                quantileExactInclusive(0.5)(duration_s) AS median_session_seconds
            FROM {table(db, "sessions")} WHERE {sw}""",
            p,
        ),
        Statement(
            "sessions",
            # visitors per row: uniq (exact below ~65k per row); the headline uses uniqExact.
            # uniq(visitor_hash) is uniq(visitor_id): uniq hashes a string with cityHash64
            f"""SELECT dimension, value, sessions, visitors, pageviews FROM (
                SELECT {which} AS dimension, {value} AS value, sessions, visitors, pageviews,
                    row_number() OVER (PARTITION BY g ORDER BY sessions DESC, value) AS k
                FROM (
                    SELECT grouping({", ".join(names)}) AS g, {", ".join(names)}, count() AS sessions,
                        uniq(visitor_hash) AS visitors, sum(pageviews) AS pageviews
                    FROM (SELECT visitor_hash, pageviews, {cols} FROM {table(db, "sessions")} WHERE {sw})
                    GROUP BY GROUPING SETS ({", ".join(f"({n})" for n in names)})
                )
            ) WHERE (dimension = 'series' OR k <= {{limit:UInt32}})
                AND NOT (dimension = 'referrers' AND value = '')
            ORDER BY dimension, sessions DESC, value""",
            p,
        ),
        Statement(
            "top_pages",
            # the top pages by pageviews first (a GROUP BY on the LowCardinality page), then
            # visitors for those pages only: uniq per row was most of the cost
            f"""SELECT page, count() AS pageviews, uniq(visitor_hash) AS visitors
            FROM {table(db, "hits")} WHERE {hw} AND page IN (
                SELECT page FROM {table(db, "hits")} WHERE {hw} AND page != ''
                GROUP BY page ORDER BY count() DESC, page LIMIT {{limit:UInt32}})
            GROUP BY page ORDER BY pageviews DESC, page""",
            p,
        ),
    ]


def _mask(i: int, n: int) -> int:
    """grouping() of the set that holds only key i: every key's bit set but key i's."""
    return (1 << n) - 1 - (1 << (n - 1 - i))
