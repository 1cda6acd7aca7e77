"""Funnel: ClickHouse ``windowFunnel`` per visitor or per session.

Each group (visitor or session) gets the furthest step it reached within the window
(``windowFunnel``; a step exactly ``window`` after the first step still counts).  Times
between steps come from the earliest chain: the first hit of step 1, then the first hit of
each next step at or after it.  Where drop-outs went: the page after the group's last hit
of the last step it reached ('' when that hit ended the session).

Speed (the profile over 10M hits): ``argMaxIf(next_page, …)`` per step copied a string on
almost every row and was half of the query's CPU (``argMin`` of the breakdown value, a
third more).  The groups keep ``cityHash64`` of those values instead (computed on the
LowCardinality dictionary) and the few result rows get their text back from a map of the
range's next pages and breakdown values; visitors are grouped on the stored ``visitor_hash``.
"""

from __future__ import annotations

from reports.query import ReportQuery
from reports.sql.common import PAGE_EVENTS, Statement, table, where

NONE = "18446744073709551615"  # UInt64 max: "step not found" in the earliest chain


def step_mask(q: ReportQuery) -> str:
    """Bit i - 1 set when a hit matches step i.  Each ``LIKE`` and ``event =`` runs on its
    LowCardinality dictionary; one sum of them makes the only full-width column (five
    separate ``AND``ed conditions made five, 0.1 of the scan's 0.23 CPU s over 10M hits)."""
    pages = [
        f"({'page' if '?' in s.text else 'path'} LIKE {{s{i}:String}}) * {1 << (i - 1)}"
        for i, s in enumerate(q.steps, 1)
        if s.kind != "event"
    ]
    events = [
        f"(event = {{s{i}:String}}) * {1 << (i - 1)}"
        for i, s in enumerate(q.steps, 1)
        if s.kind == "event"
    ]
    terms = ([f"({PAGE_EVENTS}) * ({' + '.join(pages)})"] if pages else []) + events
    return f"toUInt16({' + '.join(terms)})"


def _groups(q: ReportQuery, db: str) -> str:
    n = len(q.steps)
    group = "visitor_hash" if q.by == "visitor" else "session_hash"
    mode = ", 'strict_order'" if q.mode == "strict" else ""
    conds = ", ".join(f"bitTest(m, {i - 1}) AS c{i}" for i in range(1, n + 1))
    cs = ", ".join(f"c{i}" for i in range(1, n + 1))
    # per step: the times it matched (sorted), and the hash of the page after its last
    # matching hit (step 1 needs only its first time: level > 0 means it matched; the last
    # step needs no next page: nobody drops out of it)
    arrays = ", ".join(
        ("minIf(t, c1) AS t1" if i == 1 else f"arraySort(groupArrayIf(t, c{i})) AS a{i}")
        + (f", argMaxIf(nh, t, c{i}) AS p{i}" if i < n else "")
        for i in range(1, n + 1)
    )
    dim = f"argMin(cityHash64({q.breakdown}), t)" if q.breakdown else "0"
    # default mode: only hits that match a step matter; strict order: every page matters
    rows = (
        f"({PAGE_EVENTS} OR event IN {{events:Array(String)}})" if q.mode == "strict" else "m != 0"
    )
    inner = f"""SELECT {group} AS g, windowFunnel({{window_ms:UInt64}}{mode})(t, {cs}) AS level,
            {arrays}, {dim} AS dim
        FROM (
            SELECT visitor_hash, session_hash, toUInt64(toUnixTimestamp64Milli(ts)) AS t,
                cityHash64(next_page) AS nh,
                {q.breakdown or "''"} AS {q.breakdown or "no_breakdown"}, {step_mask(q)} AS m,
                {conds}
            FROM {table(db, "hits")}
            WHERE {where(q, db, "ts")} AND {rows}
        )
        GROUP BY g"""
    # one subquery per step: each t_i is a plain column for the next, so the chain's
    # expressions do not grow with the number of steps
    for i in range(2, n + 1):
        inner = f"""SELECT *, arrayFirstIndex(x -> x >= t{i - 1}, a{i}) AS i{i},
            if(t{i - 1} != {NONE} AND i{i} > 0, a{i}[i{i}], {NONE}) AS t{i}
        FROM ({inner})"""
    return inner


def params(q: ReportQuery) -> dict[str, object]:
    p = q.params()
    p["window_ms"] = q.window_s * 1000
    p["events"] = [s.value for s in q.steps if s.kind == "event"]
    p["limit"] = q.limit
    for i, s in enumerate(q.steps, 1):
        p[f"s{i}"] = s.value
    return p


def build(q: ReportQuery, db: str) -> list[Statement]:
    """One statement, one scan: part 0 is the whole funnel, part 1 one row per breakdown
    value, part 2 one row per (last reached step, next page) of the groups that dropped out."""
    n = len(q.steps)
    counts = ", ".join(f"countIf(level >= {i}) AS n{i}" for i in range(1, n + 1))
    medians = "".join(
        f", quantileExactInclusiveIf(0.5)(t{i} - t{i - 1}, part = 0 AND level >= {i} "
        f"AND t{i} != {NONE}) / 1000 AS m{i}"
        for i in range(2, n + 1)
    )
    parts = [0] + ([1] if q.breakdown else []) + ([2] if n > 1 else [])
    # the next page's hash of the last step reached (part 2 holds levels 1 .. n - 1 only)
    last = "".join(f"if(level = {i}, p{i}, " for i in range(1, n - 1)) + (
        f"p{n - 1}" + ")" * (n - 2) if n > 1 else "0"
    )
    # only the small columns: ARRAY JOIN copies every column of the row; the groups that
    # reached no step are dropped here, after the chain, on these columns (a HAVING on the
    # groups copied their step arrays)
    cols = ", ".join(
        ["level", "dim"] + [f"t{i}" + (f", p{i}" if i < n else "") for i in range(1, n + 1)]
    )
    # the groups carry hashes of the breakdown value and of the next page (strings copied
    # per row were the cost); this names them again: every next page and breakdown value
    # of the range by hash (one GROUP BY per column: one LowCardinality key is the fast one)
    values = " UNION ALL ".join(
        f"""SELECT cityHash64(v) AS h, toString(v) AS name FROM (
            SELECT {col} AS v FROM {table(db, "hits")} WHERE {where(q, db, "ts")} GROUP BY v)"""
        for col in ["next_page"] + ([q.breakdown] if q.breakdown else [])
    )
    names = f"SELECT h, any(name) AS name FROM ({values}) GROUP BY h"
    sql = f"""SELECT part, if(part = 0, '', names.name) AS key, lvl, groups,
            {", ".join(f"n{i}" for i in range(1, n + 1))}{"".join(f", m{i}" for i in range(2, n + 1))}
        FROM (
            SELECT part, h, lvl, count() AS groups, {counts}{medians}
            FROM (SELECT {cols} FROM ({_groups(q, db)}) WHERE level > 0)
            ARRAY JOIN arrayFilter(x -> x != 2 OR level < {n}, {parts}) AS part
            GROUP BY part, multiIf(part = 1, dim, part = 2, {last}, 0) AS h,
                if(part = 2, level, 0) AS lvl
        ) AS r
        LEFT JOIN ({names}) AS names ON r.h = names.h
        ORDER BY part, lvl, groups DESC, key
        LIMIT {{limit:UInt32}} BY part, lvl"""
    return [Statement("funnel", sql, params(q))]
