"""Pieces every report's SQL shares: the statement record and the WHERE clause.

Builders never touch the network: they turn a :class:`ReportQuery` into statements whose
user values are all server-side parameters (``{name:Type}``); only names from our own
allow lists (columns, database) are written into the SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clickstream.warehouse import check_name
from reports.query import ReportQuery

PAGE_EVENTS = "event IN ('pageview', 'search')"


@dataclass(frozen=True, slots=True)
class Statement:
    key: str  # name of the result this statement feeds
    sql: str
    params: dict[str, object] = field(default_factory=dict)


def table(database: str, name: str, alias: str = "") -> str:
    """``db.name [AS alias] FINAL``: every table is a ReplacingMergeTree(version, is_deleted)."""
    as_alias = f" AS {check_name(alias)}" if alias else ""
    return f"{check_name(database)}.{check_name(name)}{as_alias} FINAL"


# hits.day = toDate(ts) and sessions.day = toDate(start_ts), stored (migrations 0021-0024)
STORED_DAY = {"ts": "day", "start_ts": "day"}


def day(q: ReportQuery, expr: str) -> str:
    """The report day of a timestamp: its date in the site's time zone.  In UTC (the
    default) that is the tables' own key expression ``toDate``, stored as the column ``day``
    for ``hits.ts`` and ``sessions.start_ts`` (2 bytes a row, against the 8 of a
    timestamp that the date conversion has to read)."""
    if q.time_zone != "UTC":
        return f"toDate({expr}, {{tz:String}})"
    prefix, dot, column = expr.rpartition(".")
    return f"{prefix}{dot}{STORED_DAY[column]}" if column in STORED_DAY else f"toDate({expr})"


def where(
    q: ReportQuery,
    database: str,
    ts: str,
    *,
    alias: str = "",
    lower_bound: bool = True,
    segments: bool = True,
) -> str:
    """Site, date range (the site's days, inclusive), no bots, and the segment filters."""
    a = f"{alias}." if alias else ""
    parts = [f"{a}site = {{site:String}}"]
    span = "BETWEEN {d_from:Date} AND {d_to:Date}" if lower_bound else "<= {d_to:Date}"
    d, key = day(q, a + ts), f"toDate({a}{ts})"
    if d != key and q.time_zone == "UTC":
        # the stored day filters the rows; the key expression, not evaluated
        # (indexHint), still lets the primary key skip the granules out of range
        parts.append(f"indexHint({key} {span})")
    parts.append(f"{d} {span}")
    parts.append(f"{a}is_bot = 0")
    if segments and ts == "ts":
        parts.extend(hit_segment(q, database, alias))
    elif segments:
        parts.extend(segment_conditions(q, database, alias))
    return " AND ".join(parts)


# the longest session a setting allows (max_session_hours, at most 7 days), in days, plus one:
# a session with hits in the range started at most this many days before `from`
SESSION_DAYS_BACK = 8


def hit_segment(q: ReportQuery, database: str, alias: str = "") -> list[str]:
    """The segment filters for hits: ``channel``, ``device``, ``country`` and ``crm`` are
    attributes of the session (its first hit's channel, its CRM link), so a hit is in the
    segment when its session is.  A hit's own ``channel`` says how that hit arrived (an
    internal click is ``direct``), so filtering hits on it would drop every page after a
    campaign landing.  One scan of the range's sessions, only when a filter is given."""
    seg = segment_conditions(q, database)
    if not seg:
        return []
    a = f"{alias}." if alias else ""
    span = f"BETWEEN {{d_from:Date}} - {SESSION_DAYS_BACK} AND {{d_to:Date}}"
    start = day(q, "start_ts")
    hint = f"indexHint(toDate(start_ts) {span}) AND " if q.time_zone == "UTC" else ""
    return [
        f"{a}session_hash IN (SELECT cityHash64(session_id) FROM {table(database, 'sessions')} "
        f"WHERE site = {{site:String}} AND {hint}{start} {span} AND is_bot = 0 AND "
        f"{' AND '.join(seg)})"
    ]


def segment_conditions(q: ReportQuery, database: str, alias: str = "") -> list[str]:
    a = f"{alias}." if alias else ""
    parts = [f"{a}{check_name(col)} = {{f_{col}:String}}" for col in q.filters]
    if q.crm != "any":
        linked = (
            f"({a}crm_id != '' OR {a}visitor_id IN (SELECT visitor_id FROM "
            f"{table(database, 'identities')} WHERE site = {{site:String}}))"
        )
        parts.append(linked if q.crm == "linked" else f"NOT {linked}")
    return parts


def sites(database: str) -> Statement:
    """Sites with sessions, busiest first (for the dashboard's picker)."""
    return Statement(
        "sites",
        f"""SELECT site, count() AS sessions FROM {table(database, "sessions")}
        GROUP BY site ORDER BY sessions DESC, site
        LIMIT 200""",
    )
