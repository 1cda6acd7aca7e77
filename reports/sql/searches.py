"""Site search: top terms, zero-result terms, search exits, refinements, pogo-sticking.

A search is a hit with ``event = 'search'`` or a non-empty ``search_query``.  A search hit
that is itself a back-loop (the visitor came back to the results page after opening a
result) is counted as a *pogo-stick*, not as a new search.
"""

from __future__ import annotations

from reports.query import ReportQuery
from reports.sql.common import Statement, table, where


def _base(q: ReportQuery, db: str) -> str:
    return f"""SELECT lower(trimBoth(search_query)) AS term, search_results, is_dead_end_search,
            is_back_loop, next_page, page, session_id, session_hash, visitor_hash, seq
        FROM {table(db, "hits")}
        WHERE {where(q, db, "ts")} AND (event = 'search' OR search_query != '')"""


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = {**q.params(), "limit": q.limit}
    base = _base(q, db)
    return [
        Statement(
            "terms",
            # each search counts once for its term and once for the totals row (is_total = 1)
            f"""SELECT * FROM (
                SELECT *,
                    row_number() OVER (PARTITION BY is_total ORDER BY searches DESC, term) AS r_top,
                    row_number() OVER (PARTITION BY is_total ORDER BY zero_results DESC, term) AS r_zero,
                    row_number() OVER (PARTITION BY is_total ORDER BY exits DESC, term) AS r_exit
                FROM (
                    SELECT is_total, if(is_total = 1, '', term) AS term,
                        countIf(is_back_loop = 0) AS searches,
                        -- exact for the totals row, uniq (exact below ~65k) per term
                        if(is_total = 1, uniqExactIf(visitor_hash, is_back_loop = 0 AND is_total = 1),
                           uniqIf(visitor_hash, is_back_loop = 0 AND is_total = 0)) AS visitors,
                        -- sessions by the stored hash of the id (8 bytes a row, not the id strings)
                        if(is_total = 1, uniqExactIf(session_hash, is_total = 1), 0) AS sessions,
                        countIf(is_back_loop = 0 AND search_results = 0) AS zero_results,
                        countIf(is_back_loop = 0 AND next_page = '') AS exits,
                        countIf(is_back_loop = 0 AND is_dead_end_search = 1) AS dead_ends,
                        countIf(is_back_loop = 1) AS pogo_sticks,
                        avgIf(search_results, is_back_loop = 0) AS avg_results
                    FROM (SELECT * FROM ({base}) WHERE term != '') ARRAY JOIN [0, 1] AS is_total
                    GROUP BY is_total, term
                )
            ) WHERE is_total = 1 OR r_top <= {{limit:UInt32}}
                OR (r_zero <= {{limit:UInt32}} AND zero_results > 0)
                OR (r_exit <= {{limit:UInt32}} AND exits > 0)
            ORDER BY is_total, r_top""",
            p,
        ),
        Statement(
            "refinements",
            # each session's searches as one array sorted by seq, paired with the next
            # (a window partitioned by session_id sorted every search hit: 0.52 against
            # 0.33-0.43 CPU s over 10M hits); pages compared by hash
            f"""SELECT cur.2 AS term, nxt.2 AS next_term, count() AS n FROM (
                SELECT arraySort(x -> x.1, groupArray(
                    (seq, term, cityHash64(page), cityHash64(next_page)))) AS a
                FROM ({base}) WHERE is_back_loop = 0
                GROUP BY session_hash HAVING count() > 1
            ) ARRAY JOIN arrayPopBack(a) AS cur, arrayPopFront(a) AS nxt
            WHERE cur.2 != '' AND nxt.2 != '' AND nxt.2 != cur.2 AND cur.4 = nxt.3
            GROUP BY term, next_term ORDER BY n DESC, term, next_term LIMIT {{limit:UInt32}}""",
            p,
        ),
    ]
