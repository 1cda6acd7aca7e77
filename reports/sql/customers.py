"""Customers: sessions resolved to CRM ids through ``identities``, with RFM scores.

A session belongs to the customer its visitor resolves to now (``resolved_identities``:
the latest link, then merges), else to its own ``crm_id`` (after merges): links are
retroactive, so a device's anonymous sessions before the login count for the customer too,
and a merge or a moved link moves the sessions with it (as the ``resolved_sessions`` view
reads them; the report joins only the columns it needs).

R, F and M are scored 1-5 by quintile over all customers seen up to ``to``:
``1 + floor(5 * (rank - 1) / customers)``, where tied values share their mean rank (so a
value every customer has scores 3 once there are 5 customers or more; with fewer, the
quintiles are coarse: one customer scores 1, as ``ntile(5)`` gives).
Recency is days from the last session to ``to``; frequency and monetary count the range.
A customer is *at risk* when they have >= 2 sessions and their recency exceeds both
7 days and twice their own cadence (mean days between their sessions).
"""

from __future__ import annotations

from clickstream.warehouse import check_name
from reports.query import ReportQuery
from reports.sql.common import Statement, day, segment_conditions, table


def _sessions(q: ReportQuery, db: str) -> str:
    seg = "".join(f" AND {c}" for c in segment_conditions(q, db, alias="s"))
    return f"""SELECT s.session_id AS session_id, s.visitor_id AS visitor_id,
            s.start_ts AS start_ts, s.duration_s AS duration_s, s.pageviews AS pageviews,
            s.entry_path AS entry_path, s.exit_path AS exit_path, s.channel AS channel,
            s.device_type AS device_type, s.browser AS browser, s.revenue AS revenue,
            s.crm_id AS session_crm_id,
            multiIf(l.crm != '', l.crm, m.into_crm != '', m.into_crm, s.crm_id) AS customer,
            {day(q, "s.start_ts")} >= {{d_from:Date}} AS in_range
        FROM {table(db, "sessions", "s")}
        LEFT JOIN (SELECT visitor_id, crm_id AS crm FROM {check_name(db)}.resolved_identities
                   WHERE site = {{site:String}}) AS l ON s.visitor_id = l.visitor_id
        LEFT JOIN (SELECT from_crm, into_crm FROM {table(db, "crm_merges")}
                   WHERE site = {{site:String}}) AS m ON s.crm_id = m.from_crm
        WHERE s.site = {{site:String}} AND {day(q, "s.start_ts")} <= {{d_to:Date}} AND s.is_bot = 0{seg}"""


def _score(column: str, order: str, reverse: str) -> str:
    """Quintile score 1-5 from the mean rank of the value (tied values share it)."""
    low = f"rank() OVER (ORDER BY {column} {order})"
    high = f"(count() OVER () + 1 - rank() OVER (ORDER BY {column} {reverse}))"
    return f"1 + intDiv(5 * ({low} + {high} - 2), 2 * count() OVER ())"


def build(q: ReportQuery, db: str) -> list[Statement]:
    p = {**q.params(), "limit": q.limit, "crm_id": q.crm_id}
    sessions = _sessions(q, db)
    scored = f"""SELECT *,
            {_score("recency_days", "DESC", "ASC")} AS r,
            {_score("sessions", "ASC", "DESC")} AS f,
            {_score("revenue", "ASC", "DESC")} AS m,
            if(sessions_total >= 2,
               dateDiff('second', first_ts, last_ts) / 86400 / (sessions_total - 1), NULL)
               AS cadence_days,
            sessions_total >= 2 AND recency_days > 7 AND recency_days > 2 * cadence_days
               AS at_risk
        FROM (
            SELECT customer AS crm_id, uniqExact(visitor_id) AS visitors,
                uniqExact(device_type) AS devices, countIf(in_range) AS sessions,
                sumIf(revenue, in_range) AS revenue, count() AS sessions_total,
                min(start_ts) AS first_ts, max(start_ts) AS last_ts,
                dateDiff('day', {day(q, "max(start_ts)")}, {{d_to:Date}}) AS recency_days
            FROM ({sessions}) WHERE customer != '' GROUP BY customer
        )"""
    out = [
        Statement(
            "customers",
            f"""SELECT * FROM (
                SELECT *, row_number() OVER (ORDER BY r + f + m DESC, revenue DESC, crm_id) AS r_top,
                    row_number() OVER (ORDER BY at_risk DESC,
                        recency_days / greatest(cadence_days, 1) DESC, crm_id) AS r_risk
                FROM ({scored})
            ) WHERE ({{crm_id:String}} = '' AND (r_top <= {{limit:UInt32}}
                     OR (at_risk AND r_risk <= {{limit:UInt32}})))
                 OR crm_id = {{crm_id:String}}
            ORDER BY r_top""",
            p,
        )
    ]
    if q.crm_id:
        out.append(
            Statement(
                "timeline",
                f"""SELECT session_id, visitor_id, start_ts, duration_s, pageviews, entry_path,
                    exit_path, channel, device_type, browser, revenue,
                    session_crm_id != '' AS identified
                FROM ({sessions}) WHERE customer = {{crm_id:String}} AND in_range
                ORDER BY start_ts, session_id LIMIT {{limit:UInt32}}""",
                p,
            )
        )
    return out
