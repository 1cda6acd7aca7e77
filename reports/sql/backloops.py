"""Back-loops: A -> B -> A returns, per page and per A->B pair, and back-looping sessions."""

from __future__ import annotations

from reports.query import ReportQuery
from reports.sql.common import Statement, table, where


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = q.params()
    hw = f"{where(q, db, 'ts')} AND is_back_loop = 1"
    counts = """count() AS back_loops, countIf(is_quick_back = 1) AS quick_backs,
                countIf(nav = 'back_forward') AS back_button, uniqExact(session_id) AS sessions"""
    return [
        Statement(
            "totals",
            f"""SELECT count() AS sessions, countIf(bl >= 1) AS sessions_with_back_loops,
                countIf(bl >= 2) AS back_looping_sessions, sum(bl) AS back_loops,
                sum(qb) AS quick_backs
            FROM (SELECT back_loops AS bl, quick_backs AS qb FROM {table(db, "sessions")}
                  WHERE {where(q, db, "start_ts")})""",
            p,
        ),
        Statement(
            "pages",
            f"""SELECT page, {counts} FROM {table(db, "hits")} WHERE {hw}
            GROUP BY page ORDER BY back_loops DESC, page LIMIT {{limit:UInt32}}""",
            {**p, "limit": q.limit},
        ),
        Statement(
            "pairs",
            f"""SELECT page AS a, prev_page AS b, {counts} FROM {table(db, "hits")} WHERE {hw}
            GROUP BY a, b ORDER BY back_loops DESC, a, b LIMIT {{limit:UInt32}}""",
            {**p, "limit": q.limit},
        ),
    ]
