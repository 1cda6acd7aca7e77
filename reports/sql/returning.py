"""Returning visitors: new vs returning per day, visit frequency, days since last visit,
weekly cohorts.

A visitor is *new* on the UTC day of their first-ever session (looked up over all of
the site's sessions up to ``to``, not only the range) and *returning* on any later day
with a session; each visitor counts once per day.

Visitors are told apart by ``visitor_hash`` (``cityHash64(visitor_id)``, stored with the
row): grouping and sorting 8 bytes instead of the id string is most of this report's speed.
Two ids share a 64-bit hash with a chance of about n^2 / 2^65 (3 in 10^8 for a million
visitors).

Days since the last visit: per session in the range (and segment), the days since the
visitor's previous session up to ``to``; each visitor's first session has none.  Two
sessions of one visitor starting in the same millisecond are ordered by whether they count
(the one that does not count is taken as the earlier).
"""

from __future__ import annotations

from reports.query import ReportQuery
from reports.sql.common import Statement, day, segment_conditions, table, where


def _visits(q: ReportQuery, db: str) -> str:
    """(visitor, day) pairs with a session in the range, with the visitor's first-ever day:
    one scan of the site's sessions up to ``to``, no join."""
    in_range = " AND ".join(
        [f"{day(q, 'start_ts')} >= {{d_from:Date}}", *segment_conditions(q, db)]
    )
    return f"""SELECT visitor_hash, first_day, day FROM (
            SELECT visitor_hash, min({day(q, "start_ts")}) AS first_day,
                groupUniqArrayIf({day(q, "start_ts")}, {in_range}) AS days
            FROM {table(db, "sessions")}
            WHERE {where(q, db, "start_ts", lower_bound=False, segments=False)}
            GROUP BY visitor_hash
        ) ARRAY JOIN days AS day"""


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = q.params()
    visits = _visits(q, db)
    # a session counts in since_last when it is in the range and in the segment
    counted = " AND ".join([f"{day(q, 'start_ts')} >= {{d_from:Date}}", *segment_conditions(q, db)])
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
            # each visitor's sessions up to `to` as one sorted array of (start, counted):
            # the gap to the previous one without a window over every session (sorting
            # 2M rows by visitor_id cost twice as much; on visitor_hash more again)
            f"""SELECT multiIf(d = 0, '0', d = 1, '1', d <= 3, '2-3', d <= 7, '4-7',
                    d <= 14, '8-14', d <= 30, '15-30', '31+') AS days, count() AS sessions,
                min(d) AS lo
            FROM (
                SELECT dateDiff('day', {day(q, "prev.1")}, {day(q, "cur.1")}) AS d, cur.2 AS counted
                FROM (
                    SELECT arraySort(groupArray((start_ts, {counted}))) AS s
                    FROM {table(db, "sessions")}
                    WHERE {where(q, db, "start_ts", lower_bound=False, segments=False)}
                    GROUP BY visitor_hash HAVING length(s) > 1
                ) ARRAY JOIN arrayPopFront(s) AS cur, arrayPopBack(s) AS prev
            ) WHERE counted
            GROUP BY days ORDER BY lo""",
            p,
        ),
    ]
