"""Back-loops: A -> B -> A returns, per page and per A->B pair, and back-looping sessions."""

from __future__ import annotations

from reports.query import ReportQuery
from reports.sql.common import Statement, table, where


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = q.params()
    hw = f"{where(q, db, 'ts')} AND is_back_loop = 1"
    counts = """count() AS back_loops, countIf(is_quick_back = 1) AS quick_backs,
                countIf(nav = 'back_forward') AS back_button, uniq(session_hash) AS sessions"""
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
            "loops",
            # each back-loop counts once for its page (b = '') and once for its A -> B pair
            f"""SELECT a, b, back_loops, quick_backs, back_button, sessions FROM (
                SELECT kv.1 AS a, kv.2 AS b, is_pair, {counts},
                    row_number() OVER (PARTITION BY is_pair ORDER BY back_loops DESC, a, b) AS k
                FROM {table(db, "hits")}
                ARRAY JOIN [(page, ''), (page, prev_page)] AS kv, [0, 1] AS is_pair
                WHERE {hw}
                GROUP BY a, b, is_pair
            ) WHERE k <= {{limit:UInt32}} ORDER BY is_pair, k""",
            {**p, "limit": q.limit},
        ),
    ]
