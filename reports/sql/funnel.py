"""Funnel: ClickHouse ``windowFunnel`` per visitor or per session.

Each group (visitor or session) gets the furthest step it reached within the window
(``windowFunnel``; a step exactly ``window`` after the first step still counts).  Times
between steps come from the earliest chain: the first hit of step 1, then the first hit of
each next step at or after it.  Where drop-outs went: the page after the group's last hit
of the last step it reached ('' when that hit ended the session).

Speed (the profile over 10M hits): every aggregate state a group keeps costs for every row
(ten of them, ``windowFunnel``, per-step arrays, ``argMaxIf`` per step, were 1.1 of the
query's 2.0 CPU s).  A group now keeps two arrays: its hits as ``time << 10 | step bits``
and the hashes of their next pages.  ``windowFunnel`` runs over the sorted array through
``arrayReduce`` (the same function, the same levels), the chain and the next page of the
last step reached are read from it (1.05 → 0.84 s wall, 11.5 → 9.0 s over 100M hits).
Next pages and breakdown values travel as ``cityHash64`` (computed on the LowCardinality
dictionary); the few result rows get their text back from a map of the range's values.
"""

from __future__ import annotations

from reports.query import MAX_STEPS, ReportQuery
from reports.sql.common import PAGE_EVENTS, Statement, table, where

NONE = "18446744073709551615"  # UInt64 max: "step not found" in the earliest chain
SHIFT = MAX_STEPS  # a hit's time (ms) sits above its step bits, one bit a step
assert SHIFT <= 16, "the step mask is a UInt16"
assert MAX_STEPS < 16, "strict order packs a level in 4 bits"
TIME_BITS = str((1 << 64) - (1 << SHIFT))  # the mask that clears the step bits


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
    dim = f"argMin(cityHash64({q.breakdown}), t)" if q.breakdown else "0"
    # default mode: only hits that match a step matter; strict order: every page matters
    rows = (
        f"({PAGE_EVENTS} OR event IN {{events:Array(String)}})" if q.mode == "strict" else "m != 0"
    )
    bits = ", ".join(f"arrayMap(x -> bitTest(x, {i - 1}), a)" for i in range(1, n + 1))
    t = f"bitShiftRight(x, {SHIFT})"
    # strict order, one pass over the sorted hits with the state (level, start, best) packed
    # in one UInt64, start << 8 | best << 4 | level (a tuple state was 0.15 s slower over
    # 10M hits, the same levels): a hit of the next step within the window from the start
    # advances the chain, a step-1 hit starts it again, a hit of the step reached keeps it
    # (a reload), any other page ends it.
    # windowFunnel's 'strict_order' ends the group's whole search at the first other page
    # after step 1, so a later clean attempt never counted (and a step-1 hit between steps
    # 2 and 3 did not break the chain)
    level = (
        f"""bitAnd(bitShiftRight(arrayFold((s, x) -> multiIf(
                bitAnd(s, 15) BETWEEN 1 AND {n - 1} AND bitTest(x, bitAnd(s, 15))
                    AND {t} - bitShiftRight(s, 8) <= {{window_ms:UInt64}},
                    bitShiftLeft(bitShiftRight(s, 8), 8)
                    + greatest(bitAnd(bitShiftRight(s, 4), 15), bitAnd(s, 15) + 1) * 16
                    + bitAnd(s, 15) + 1,
                bitTest(x, 0),
                    bitShiftLeft({t}, 8) + greatest(bitAnd(bitShiftRight(s, 4), 15), 1) * 16 + 1,
                bitAnd(s, 15) >= 1 AND bitTest(x, greatest(bitAnd(s, 15), 1) - 1), s,
                bitShiftLeft(bitShiftRight(s, 8), 8) + bitAnd(bitShiftRight(s, 4), 15) * 16),
                a, toUInt64(0)), 4), 15)"""
        if q.mode == "strict"
        else f"""arrayReduce(concat('windowFunnel(', toString({{window_ms:UInt64}}), ')'),
                arrayMap(x -> {t}, a), {bits})"""
    )
    # the page after the group's last hit of the last step it reached (levels 1 .. n - 1)
    nxt = (
        f"""if(level BETWEEN 1 AND {n - 1}, arrayReduce('argMax', nhs,
                arrayMap(x -> x * bitTest(x, level - 1), raw)), 0)"""
        if n > 1
        else "0"
    )
    inner = f"""SELECT *, {nxt} AS p,
            arrayFirstIndex(x -> bitTest(x, 0), a) AS i1,
            if(i1 > 0, bitAnd(a[i1], {TIME_BITS}), {NONE}) AS T1
        FROM (
            SELECT *, arraySort(raw) AS a, {level} AS level
            FROM (
                SELECT {group} AS g, groupArray(packed) AS raw, groupArray(nh) AS nhs,
                    {dim} AS dim
                FROM (
                    SELECT visitor_hash, session_hash, toUInt64(toUnixTimestamp64Milli(ts)) AS t,
                        bitShiftLeft(t, {SHIFT}) + m AS packed, cityHash64(next_page) AS nh,
                        {q.breakdown or "''"} AS {q.breakdown or "no_breakdown"},
                        {step_mask(q)} AS m
                    FROM {table(db, "hits")}
                    WHERE {where(q, db, "ts")} AND {rows}
                )
                GROUP BY g
            )
        )"""
    # the chain in packed units: T_i is the step's hit with its step bits cleared, so
    # "at or after T_i" is one comparison of packed values
    for i in range(2, n + 1):
        inner = f"""SELECT *, arrayFirstIndex(x -> x >= T{i - 1} AND bitTest(x, {i - 1}), a) AS i{i},
            if(T{i - 1} != {NONE} AND i{i} > 0, bitAnd(a[i{i}], {TIME_BITS}), {NONE}) AS T{i}
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
    # only the small columns: ARRAY JOIN copies every column of the row; the groups that
    # reached no step are dropped here, after the chain, on these columns (a HAVING on the
    # groups copied their step arrays)
    cols = ", ".join(
        ["level", "dim", "p"]
        + [
            f"if(T{i} = {NONE}, T{i}, bitShiftRight(T{i}, {SHIFT})) AS t{i}"
            for i in range(1, n + 1)
        ]
    )
    # the groups carry hashes of the breakdown value and of the next page (strings copied
    # per row were the cost); this names them again: every next page and breakdown value
    # of the range by hash (one GROUP BY per column: one LowCardinality key is the fast one)
    values = " UNION ALL ".join(
        f"""SELECT cityHash64(v) AS h, toString(v) AS name FROM (
            SELECT {col} AS v FROM {table(db, "hits")} WHERE {where(q, db, "ts", segments=False)}
            GROUP BY v)"""
        for col in ["next_page"] + ([q.breakdown] if q.breakdown else [])
    )
    names = f"SELECT h, any(name) AS name FROM ({values}) GROUP BY h"
    sql = f"""SELECT part, if(part = 0, '', names.name) AS key, lvl, groups,
            {", ".join(f"n{i}" for i in range(1, n + 1))}{"".join(f", m{i}" for i in range(2, n + 1))}
        FROM (
            SELECT part, h, lvl, count() AS groups, {counts}{medians}
            FROM (SELECT {cols} FROM ({_groups(q, db)}) WHERE level > 0)
            ARRAY JOIN arrayFilter(x -> x != 2 OR level < {n}, {parts}) AS part
            GROUP BY part, multiIf(part = 1, dim, part = 2, p, 0) AS h,
                if(part = 2, level, 0) AS lvl
        ) AS r
        LEFT JOIN ({names}) AS names ON r.h = names.h
        ORDER BY part, lvl, groups DESC, key
        LIMIT {{limit:UInt32}} BY part, lvl"""
    return [Statement("funnel", sql, params(q))]
