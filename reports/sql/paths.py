"""Paths: the most common first pages of sessions, and transitions around one page."""

from __future__ import annotations

from reports.query import ReportQuery
from reports.sql.common import PAGE_EVENTS, Statement, table, where


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = q.params()
    hw = where(q, db, "ts")
    # the busiest page needs one more scan of hits: only when no page was asked for (a
    # scalar subquery runs even when the if() below would not use it)
    target = (
        "{page:String}"
        if q.page
        # CAST: an empty LowCardinality scalar subquery is an error, an empty String is NULL
        else f"(SELECT CAST(page AS String) FROM {table(db, 'hits')} WHERE {hw} AND {PAGE_EVENTS} "
        "AND page != '' "
        "GROUP BY page ORDER BY count() DESC, page LIMIT 1)"
    )
    return [
        Statement(
            "top_paths",
            # grouped on the 64-bit hash of the path (a third faster than on the array)
            f"""SELECT any(arraySlice(paths, 1, {{depth:UInt8}})) AS path, count() AS sessions,
                uniq(visitor_hash) AS visitors
            FROM {table(db, "sessions")} WHERE {where(q, db, "start_ts")} AND length(paths) > 0
            GROUP BY cityHash64(arraySlice(paths, 1, {{depth:UInt8}}))
            ORDER BY sessions DESC, path LIMIT {{limit:UInt32}}""",
            {**p, "depth": q.depth, "limit": q.limit},
        ),
        Statement(
            "transitions",
            # (previous, next) pairs of the page first: few rows to split into the two lists
            f"""WITH {target} AS target
            SELECT target, kv.1 AS direction, kv.2 AS other, sum(pair) AS n,
                sum(n) OVER (PARTITION BY direction) AS total
            FROM (
                SELECT prev_page, next_page, count() AS pair FROM {table(db, "hits")}
                WHERE {hw} AND {PAGE_EVENTS} AND page != '' AND page = target
                GROUP BY prev_page, next_page
            )
            ARRAY JOIN [('previous', toString(prev_page)), ('next', toString(next_page))] AS kv
            GROUP BY direction, other ORDER BY direction, n DESC, other
            LIMIT {{limit:UInt32}} BY direction""",
            {**p, "page": q.page, "limit": q.limit},
        ),
    ]
