"""Turn raw result rows into the report's JSON shape (pure; no I/O).

Each shaper takes the query and ``{statement key: list of row dicts}`` and returns a
JSON-able dict.  Tables are lists of flat dicts so that any of them can be a CSV.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reports.query import ReportQuery

Rows = list[dict[str, Any]]


def clean(value: Any) -> Any:
    """JSON-able scalars: dates as ISO strings, floats rounded, NaN as null."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def _rows(rows: Rows, drop: tuple[str, ...] = ()) -> Rows:
    return [{k: clean(v) for k, v in r.items() if k not in drop} for r in rows]


def _days(q: ReportQuery) -> list[str]:
    first = q.date_from.toordinal()
    return [
        date.fromordinal(first + i).isoformat() for i in range((q.date_to - q.date_from).days + 1)
    ]


def _hours(q: ReportQuery) -> list[str]:
    """The UTC hours (as the series names them) that the range's days cover in the site's
    time zone: from the hour of the first day's start to the hour before the last day's end."""
    zone = ZoneInfo(q.time_zone)
    start = datetime.combine(q.date_from, time(), zone).astimezone(UTC)
    end = datetime.combine(q.date_to + timedelta(days=1), time(), zone).astimezone(UTC)
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(hour.strftime("%Y-%m-%dT%H:%M:%SZ"))
        hour += timedelta(hours=1)
    return out


# the overview's tables of sessions and visitors per value of one dimension
OVERVIEW_BREAKDOWNS = (
    "entry_pages",
    "exit_pages",
    "channels",
    "referrers",
    "devices",
    "browsers",
    "countries",
)


def overview(q: ReportQuery, res: dict[str, Rows]) -> dict[str, Any]:
    rows = res["sessions"]
    total = res["totals"][0] if res["totals"] else {}
    totals = {
        "visitors": int(total.get("visitors", 0)),
        "sessions": int(total.get("sessions", 0)),
        "pageviews": int(total.get("pageviews", 0) or 0),
        "bounce_rate": clean(float(total.get("bounce_rate") or 0.0)),
        "median_session_seconds": clean(total.get("median_session_seconds")),
    }
    series = sorted(
        (
            {
                "t": _bucket(r["value"]),
                "visitors": int(r["visitors"]),
                "sessions": int(r["sessions"]),
                "pageviews": int(r["pageviews"]),
            }
            for r in rows
            if r["dimension"] == "series"
        ),
        key=lambda r: str(r["t"]),
    )
    # every day (or hour) of the range, a quiet one as 0: a chart spaces its points evenly, so a
    # missing bucket would join the hours around it as if they were one apart
    by_bucket = {r["t"]: r for r in series}
    series = [
        by_bucket.get(t, {"t": t, "visitors": 0, "sessions": 0, "pageviews": 0})
        for t in (_hours(q) if q.interval == "hour" else _days(q))
    ]
    out: dict[str, Any] = {"totals": totals, "series": series, "top_pages": _rows(res["top_pages"])}
    for name in OVERVIEW_BREAKDOWNS:
        out[name] = [
            {"value": r["value"], "sessions": int(r["sessions"]), "visitors": int(r["visitors"])}
            for r in rows
            if r["dimension"] == name
        ]
    return out


def _bucket(text: str) -> str:
    """ClickHouse's toString of a Date or DateTime bucket, as ISO (UTC)."""
    return text.replace(" ", "T") + "Z" if " " in text else text


def funnel(q: ReportQuery, res: dict[str, Rows]) -> dict[str, Any]:
    rows = res["funnel"]
    n = len(q.steps)
    row = next((r for r in rows if r["part"] == 0), {})
    counts = [int(row.get(f"n{i}", 0) or 0) for i in range(1, n + 1)]
    steps = []
    for i, step in enumerate(q.steps):
        prev = counts[i - 1] if i else counts[0]
        median = row.get(f"m{i + 1}") if i else None
        steps.append(
            {
                "step": step.label,
                "count": counts[i],
                "conversion": ratio(counts[i], counts[0]),
                "dropoff": prev - counts[i],
                "dropoff_rate": ratio(prev - counts[i], prev),
                "median_seconds_from_previous": clean(median),
            }
        )
    out: dict[str, Any] = {"steps": steps, "by": q.by, "window_seconds": q.window_s, "mode": q.mode}
    if q.breakdown:
        out["breakdown"] = [
            {
                "value": r["key"],
                "counts": [int(r[f"n{i}"]) for i in range(1, n + 1)],
                "conversion": ratio(int(r[f"n{n}"]), int(r["n1"])),
            }
            for r in rows
            if r["part"] == 1
        ]
    out["dropoff_next"] = [
        {
            "after_step": q.steps[int(r["lvl"]) - 1].label,
            "next_page": r["key"] or "(exit)",
            "count": int(r["groups"]),
        }
        for r in rows
        if r["part"] == 2
    ]
    return out


def returning(q: ReportQuery, res: dict[str, Rows]) -> dict[str, Any]:
    rows = res["visits"]
    days = {clean(r["day"]): r for r in rows if r["part"] == 0}
    filled = [
        {
            "date": d,
            "new_visitors": int(days[d]["new_visitors"]) if d in days else 0,
            "returning_visitors": int(days[d]["returning_visitors"]) if d in days else 0,
        }
        for d in _days(q)
    ]
    total = next((r for r in rows if r["part"] == 1), {})
    totals = {
        "visitors": int(total.get("visitors", 0)),
        "new_visitors": int(total.get("new_unique", 0)),
        "returning_visitors": int(total.get("returning_unique", 0)),
    }
    cohorts: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["part"] == 2:
            key = clean(r["day"])
            c = cohorts.setdefault(key, {"cohort": key, "weeks": [0] * q.weeks})
            c["weeks"][int(r["week"])] = int(r["visitors"])
    for c in cohorts.values():
        c["visitors"] = c["weeks"][0]
        # weeks that start after `to` have not happened yet: null, not 0
        start = date.fromisoformat(c["cohort"]).toordinal()
        c["weeks"] = [
            n if start + 7 * w <= q.date_to.toordinal() else None for w, n in enumerate(c["weeks"])
        ]
        c["retention"] = [None if n is None else ratio(n, c["visitors"]) for n in c["weeks"]]
    return {
        "days": filled,
        "totals": totals,
        "frequency": _rows(res["frequency"], drop=("lo",)),
        "days_since_last_visit": _rows(res["since_last"], drop=("lo",)),
        "cohorts": list(cohorts.values()),
    }


def paths(q: ReportQuery, res: dict[str, Rows]) -> dict[str, Any]:
    out: dict[str, Any] = {"top_paths": _rows(res["top_paths"])}
    trans = res["transitions"]
    page = trans[0]["target"] if trans else q.page
    for direction, empty in (("previous", "(entrance)"), ("next", "(exit)")):
        out[direction] = [
            {"page": r["other"] or empty, "count": r["n"], "share": ratio(r["n"], r["total"])}
            for r in trans
            if r["direction"] == direction
        ]
    total = next((r["total"] for r in trans if r["direction"] == "next"), 0)
    out["transitions"] = {"page": page, "pageviews": total}
    return out


def searches(q: ReportQuery, res: dict[str, Rows]) -> dict[str, Any]:
    terms = []
    total: dict[str, Any] = {}
    for r in res["terms"]:
        if r["is_total"]:
            total = r
            continue
        t = {
            k: clean(v)
            for k, v in r.items()
            if k not in ("is_total", "sessions", "r_top", "r_zero", "r_exit")
        }
        t["success_rate"] = ratio(r["searches"] - r["dead_ends"], r["searches"])
        terms.append((r, t))
    totals: dict[str, Any] = {
        "searches": int(total.get("searches", 0)),
        "searchers": int(total.get("visitors", 0)),
        "sessions_with_search": int(total.get("sessions", 0)),
        **{k: int(total.get(k, 0)) for k in ("zero_results", "exits", "dead_ends", "pogo_sticks")},
    }
    totals["dead_end_rate"] = ratio(totals["dead_ends"], totals["searches"])
    return {
        "totals": totals,
        "terms": _ranked(terms, "r_top", q.limit, ""),
        "zero_result_terms": _ranked(terms, "r_zero", q.limit, "zero_results"),
        "search_exits": _ranked(terms, "r_exit", q.limit, "exits"),
        "refinements": _rows(res["refinements"]),
        "pogo_sticking": sorted(
            (
                {"term": t["term"], "pogo_sticks": t["pogo_sticks"]}
                for _, t in terms
                if t["pogo_sticks"]
            ),
            key=lambda x: (-x["pogo_sticks"], x["term"]),
        ),
    }


def _ranked(
    terms: list[tuple[dict[str, Any], dict[str, Any]]], rank: str, limit: int, need: str
) -> Rows:
    ordered = sorted(terms, key=lambda rt: int(rt[0][rank]))
    return [t for r, t in ordered if int(r[rank]) <= limit and (not need or t[need] > 0)]


def backloops(q: ReportQuery, res: dict[str, Rows]) -> dict[str, Any]:
    totals = _rows(res["totals"])[0]
    totals["back_looping_share"] = ratio(totals["back_looping_sessions"], totals["sessions"])
    totals["back_loop_share"] = ratio(totals["sessions_with_back_loops"], totals["sessions"])
    loops = _rows(res["loops"])
    pages = [
        {"page": r.pop("a"), **{k: v for k, v in r.items() if k != "b"}}
        for r in loops
        if not r["b"]
    ]
    return {"totals": totals, "pages": pages, "pairs": [r for r in loops if r["b"]]}


SEGMENTS = (
    # (name, predicate on r, f, m), first match wins
    ("champions", lambda r, f, m: r >= 4 and f >= 4),
    ("loyal", lambda r, f, m: r >= 3 and f >= 3),
    ("new", lambda r, f, m: r >= 4 and f == 1),
    ("promising", lambda r, f, m: r >= 4),
    ("needs attention", lambda r, f, m: r == 3),
    ("at risk", lambda r, f, m: f >= 3 or m >= 4),
    ("hibernating", lambda r, f, m: r == 2),
    ("lost", lambda r, f, m: True),
)


def segment(r: int, f: int, m: int) -> str:
    """A named RFM segment from the 1-5 scores (recency and frequency first, money breaks ties)."""
    return next(name for name, pred in SEGMENTS if pred(r, f, m))


def customers(q: ReportQuery, res: dict[str, Rows]) -> dict[str, Any]:
    rows = []
    for r in res["customers"]:
        c = {
            "crm_id": r["crm_id"],
            "visitors": int(r["visitors"]),
            "devices": int(r["devices"]),
            "sessions": int(r["sessions"]),
            "revenue": clean(float(r["revenue"])),
            "recency_days": int(r["recency_days"]),
            "r": int(r["r"]),
            "f": int(r["f"]),
            "m": int(r["m"]),
            "segment": segment(int(r["r"]), int(r["f"]), int(r["m"])),
            "sessions_total": int(r["sessions_total"]),
            "cadence_days": clean(r["cadence_days"]),
            "at_risk": bool(r["at_risk"]),
            "_top": int(r["r_top"]),
            "_risk": int(r["r_risk"]),
        }
        rows.append(c)
    out: dict[str, Any] = {
        "customers": [strip(c) for c in rows if q.crm_id or c["_top"] <= q.limit],
        "at_risk": [
            strip(c)
            for c in sorted(rows, key=lambda c: c["_risk"])
            if c["at_risk"] and c["_risk"] <= q.limit
        ],
    }
    if q.crm_id:
        out["timeline"] = _rows(res.get("timeline", []))
    return out


def strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


SHAPERS = {
    "overview": overview,
    "funnel": funnel,
    "returning": returning,
    "paths": paths,
    "searches": searches,
    "backloops": backloops,
    "customers": customers,
}
