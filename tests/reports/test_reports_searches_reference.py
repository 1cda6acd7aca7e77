"""The searches' refinements against a plain-Python reference over random small traffic.

A refinement (reports/README.md): a search followed, as the session's next search that is
not a pogo-stick (``is_back_loop = 0``), by a search for another non-empty term, when that
next search is the page the visitor went to straight from the first (its ``next_page``).
"""

from __future__ import annotations

import itertools
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

TERMS = ["", "shoes", "red shoes", "boots"]
PAGES = ["/search?q=a", "/search?q=b", "/p/1", ""]
START = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)
_sites = itertools.count(1)


def reference(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    sessions: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["is_back_loop"] == 0:
            sessions.setdefault(r["session_id"], []).append(r)
    out: Counter[tuple[str, str]] = Counter()
    for hits in sessions.values():
        hits.sort(key=lambda r: r["seq"])
        for cur, nxt in itertools.pairwise(hits):
            a, b = cur["search_query"].strip().lower(), nxt["search_query"].strip().lower()
            if a and b and a != b and cur["next_page"] == nxt["page"]:
                out[(a, b)] += 1
    return sorted((a, b, n) for (a, b), n in out.items())


@pytest.fixture(scope="module")
def db(fresh_db: Any) -> str:
    return str(fresh_db())


searches_of_session = st.lists(
    st.tuples(
        st.sampled_from(TERMS),
        st.sampled_from(PAGES[:3]),  # the search's own page
        st.sampled_from(PAGES),  # next page
        st.integers(0, 1),  # a pogo-stick
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=30, deadline=None)
@given(sessions=st.lists(searches_of_session, min_size=1, max_size=5), data=st.data())
def test_refinements_equal_the_reference(
    chdb_client: Client, db: str, sessions: list[list[tuple[str, str, str, int]]], data: Any
) -> None:
    site = f"sref{next(_sites)}"
    rows = []
    for s, searches in enumerate(sessions):
        # the hits arrive and are stored in any order; seq orders them
        seqs = data.draw(st.permutations(range(1, len(searches) + 1)))
        for (term, page, next_page, back), seq in zip(searches, seqs, strict=True):
            rows.append(
                hit(
                    site=site,
                    visitor_id=f"v{s % 2}",
                    session_id=f"s{s}",
                    ts=(START + timedelta(seconds=seq)).strftime("%Y-%m-%d %H:%M:%S"),
                    event="search",
                    path=page.split("?")[0],
                    page=page,
                    search_query=term.upper() if seq % 2 else f" {term}",
                    search_results=3,
                    next_page=next_page,
                    is_back_loop=back,
                    seq=seq,
                )
            )
    load(chdb_client, db, "hits", rows)
    params = {"site": [site], "from": ["2024-03-05"], "to": ["2024-03-05"], "limit": ["1000"]}
    out = run(ReportQuery.parse("searches", params), chdb_client, database=db)
    got = sorted((r["term"], r["next_term"], r["n"]) for r in out["refinements"])
    assert got == reference(rows)
