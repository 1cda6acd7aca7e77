"""The funnel report against a plain-Python reference over random small traffic.

The reference follows the definitions in reports/README.md: a group's level is
ClickHouse's ``windowFunnel`` (default mode: a step counts when it comes within the
window of the start of the chain that reached the step before; a new step-1 hit starts
the chain again); times between steps come from the earliest chain; the drop-outs'
next page is the one after the group's last hit of the last step it reached.  Steps do
not overlap and every hit of a visitor has its own millisecond, so no tie decides
an answer.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.query import ReportQuery
from reports.run import run
from tests.reports.report_rows import hit, load

STEPS = ["/", "/p/*", "/cart", "event:purchase"]
PAGES = ["/", "/p/a", "/p/b", "/cart", "/about"]
START = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)
WINDOWS = {"10m": 600, "1h": 3600, "1d": 86400}
_sites = itertools.count(1)


def step_of(event: str, path: str) -> int | None:
    """0-based index of the step a hit matches (the steps do not overlap)."""
    if event == "purchase":
        return 3
    return {"/": 0, "/p/a": 1, "/p/b": 1, "/cart": 2}.get(path)


def level(events: list[tuple[int, int]], window_ms: int) -> int:
    """windowFunnel, default mode, over (ms, step) sorted by time."""
    start: list[int | None] = [None] * len(STEPS)
    for t, k in events:
        if k == 0:
            start[0] = t
        elif start[k - 1] is not None and t <= start[k - 1] + window_ms:  # type: ignore[operator]
            start[k] = start[k - 1]
            if k == len(STEPS) - 1:
                return len(STEPS)
    return max((i + 1 for i, s in enumerate(start) if s is not None), default=0)


def chain(events: list[tuple[int, int]]) -> list[int | None]:
    """The earliest chain: first hit of step 1, then the first of each next step at or after."""
    times: list[int | None] = []
    prev: int | None = None
    for k in range(len(STEPS)):
        found = [t for t, s in events if s == k and (k == 0 or (prev is not None and t >= prev))]
        prev = min(found) if found else None
        times.append(prev)
    return times


def reference(rows: list[dict[str, Any]], window_s: int, by: str) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["visitor_id"] if by == "visitor" else r["session_id"], []).append(r)
    n = len(STEPS)
    counts = [0] * n
    gaps: list[list[float]] = [[] for _ in range(n)]
    dropoff: Counter[tuple[str, str]] = Counter()
    for hits in groups.values():
        hits.sort(key=lambda r: r["ts"])
        events = [
            (int(r["ts"].timestamp() * 1000), k)
            for r in hits
            if (k := step_of(r["event"], r["path"])) is not None
        ]
        lvl = level(events, window_s * 1000)
        for i in range(lvl):
            counts[i] += 1
        times = chain(events)
        for i in range(1, lvl):
            if times[i] is not None:
                gaps[i].append((times[i] - times[i - 1]) / 1000)  # type: ignore[operator]
        if 0 < lvl < n:
            last = max(
                (r for r in hits if step_of(r["event"], r["path"]) == lvl - 1),
                key=lambda r: r["ts"],
            )
            dropoff[(STEPS[lvl - 1], last["next_page"] or "(exit)")] += 1
    return {
        "counts": counts,
        "medians": [round(statistics.median(g), 4) if g else None for g in gaps[1:]],
        "dropoff": sorted((a, p, c) for (a, p), c in dropoff.items()),
    }


@pytest.fixture(scope="module")
def db(fresh_db: Any) -> str:
    """One database for every example; each example has a site of its own."""
    return str(fresh_db())


hits_of_visitor = st.lists(
    st.tuples(
        st.integers(0, 4 * 3600 * 1000),  # ms after START
        st.sampled_from(PAGES + ["purchase"]),
        st.sampled_from(PAGES + [""]),  # next page
        st.integers(0, 1),  # which of the visitor's two sessions
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda h: h[0],
)


@settings(max_examples=40, deadline=None)
@given(
    visitors=st.lists(hits_of_visitor, min_size=1, max_size=6),
    window=st.sampled_from(sorted(WINDOWS)),
    by=st.sampled_from(["visitor", "session"]),
)
def test_funnel_equals_the_reference(
    chdb_client: Client, db: str, visitors: list[list[tuple[int, str, str, int]]],
    window: str, by: str,
) -> None:  # fmt: skip
    site = f"ref{next(_sites)}"
    rows = [
        hit(
            site=site,
            visitor_id=f"v{v}",
            session_id=f"v{v}s{s}",
            ts=(START + timedelta(milliseconds=ms)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            event="purchase" if page == "purchase" else "pageview",
            path="" if page == "purchase" else page,
            next_page=next_page,
        )
        for v, hits in enumerate(visitors)
        for ms, page, next_page, s in hits
    ]
    load(chdb_client, db, "hits", rows)
    params = {
        "site": [site], "from": ["2024-03-05"], "to": ["2024-03-05"], "step": STEPS,
        "window": [window], "by": [by], "limit": ["1000"],
    }  # fmt: skip
    out = run(ReportQuery.parse("funnel", params), chdb_client, database=db)
    want = reference(rows, WINDOWS[window], by)
    assert [s["count"] for s in out["steps"]] == want["counts"]
    assert [s["median_seconds_from_previous"] for s in out["steps"][1:]] == want["medians"]
    got = sorted((d["after_step"], d["next_page"], d["count"]) for d in out["dropoff_next"])
    assert got == want["dropoff"]
