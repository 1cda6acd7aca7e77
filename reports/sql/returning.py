"""Returning visitors: new vs returning per day, visit frequency, days since last visit,
weekly cohorts.

A visitor is *new* on the UTC day of their first-ever session (looked up over all of
the site's sessions up to ``to``, not only the range) and *returning* on any later day
with a session; each visitor counts once per day.

Visitors are told apart by ``visitor_hash`` (``cityHash64(visitor_id)``, stored with the
row): grouping and sorting 8 bytes instead of the id string is most of this report's speed.
Two ids share a 64-bit hash with a chance of about n^2 / 2^65 (3 in 10^8 for a million
visitors).
"""

from __future__ import annotations

from clickstream.warehouse import check_name
from reports.query import ReportQuery
from reports.sql.common import Statement, segment_conditions, table, where


def _visits(q: ReportQuery, db: str) -> str:
    """(visitor, day) pairs with a session in the range, with the visitor's first-ever day:
    one scan of the site's sessions up to ``to``, no join."""
    in_range = " AND ".join(["toDate(start_ts) >= {d_from:Date}", *segment_conditions(q, db)])
    return f"""SELECT visitor_hash, first_day, day FROM (
            SELECT visitor_hash, min(toDate(start_ts)) AS first_day,
                groupUniqArrayIf(toDate(start_ts), {in_range}) AS days
            FROM {table(db, "sessions")}
            WHERE {where(q, db, "start_ts", lower_bound=False, segments=False)}
            GROUP BY visitor_hash
        ) ARRAY JOIN days AS day"""


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = q.params()
    visits = _visits(q, db)
    seg = "".join(f" AND {c}" for c in segment_conditions(q, db))
    # the columns the segment conditions read (names from our allow list), visitor_id aside
    seg_cols = "".join(f", {check_name(c)}" for c in q.filters)
    if q.crm != "any":
        seg_cols += ", crm_id"
    return [
        Statement(
            "visits",
            # one pass over the (visitor, day) pairs: part 0 per day, part 1 the totals,
            # part 2 the weekly cohorts of visitors first seen in the range
            f"""SELECT part, day, week, countIf(v_day = first_day) AS new_visitors,
                countIf(v_day > first_day) AS returning_visitors,
                if(part = 1, uniqExactIf(visitor_hash, part = 1), uniqIf(visitor_hash, part = 2))
                    AS visitors,
                uniqExactIf(visitor_hash, part = 1 AND v_day = first_day) AS new_unique,
                uniqExactIf(visitor_hash, part = 1 AND v_day > first_day) AS returning_unique
            FROM (
                SELECT visitor_hash, first_day, v_day, part,
                    multiIf(part = 0, v_day, part = 2, toMonday(first_day), toDate(0)) AS day,
                    if(part = 2, intDiv(dateDiff('day', toMonday(first_day), toMonday(v_day)), 7), 0)
                        AS week
                FROM (SELECT visitor_hash, day AS v_day, first_day FROM ({visits}))
                ARRAY JOIN if(first_day >= {{d_from:Date}}, [0, 1, 2], [0, 1]) AS part
            )
            WHERE week < {{weeks:UInt8}}
            GROUP BY part, day, week ORDER BY part, day, week""",
            {**p, "weeks": q.weeks},
        ),
        Statement(
            "frequency",
            f"""SELECT multiIf(n >= 10, '10+', n >= 5, '5-9', toString(n)) AS sessions,
                count() AS visitors, min(n) AS lo
            FROM (SELECT visitor_hash, count() AS n FROM {table(db, "sessions")}
                  WHERE {where(q, db, "start_ts")} GROUP BY visitor_hash)
            GROUP BY sessions ORDER BY lo""",
            p,
        ),
        Statement(
            "since_last",
            f"""SELECT multiIf(d = 0, '0', d = 1, '1', d <= 3, '2-3', d <= 7, '4-7',
                    d <= 14, '8-14', d <= 30, '15-30', '31+') AS days, count() AS sessions,
                min(d) AS lo
            FROM (
                SELECT *, dateDiff('day', toDate(prev_ts), toDate(start_ts)) AS d FROM (
                    -- only the columns used after the window: SELECT * would sort every column.
                    -- PARTITION BY visitor_id: on visitor_hash this window took 3-4x longer
                    -- over 100M hits (20M sessions)
                    SELECT visitor_id, start_ts{seg_cols},
                        lagInFrame(start_ts) OVER w AS prev_ts, row_number() OVER w AS k
                    FROM {table(db, "sessions")}
                    WHERE {where(q, db, "start_ts", lower_bound=False, segments=False)}
                    WINDOW w AS (PARTITION BY visitor_id ORDER BY start_ts, session_id
                                 ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
                ) WHERE k > 1 AND toDate(start_ts) >= {{d_from:Date}}{seg}
            ) GROUP BY days ORDER BY lo""",
            p,
        ),
    ]
