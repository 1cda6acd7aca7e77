"""Site search and back-loops over four known sessions."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from reports.query import ReportQuery
from reports.run import run
from tests.reports.report_rows import hit, load, session

DAY = "2024-02-01 10:00:"


def _hits() -> list[dict[str, Any]]:
    def h(sid: str, seq: int, page: str, **kw: Any) -> dict[str, Any]:
        path = page.split("?")[0]
        return hit(
            session_id=sid,
            visitor_id="v" + sid,
            seq=seq,
            ts=f"{DAY}{seq:02d}",
            path=path,
            page=page,
            **kw,
        )

    def search(sid: str, seq: int, term: str, results: int, **kw: Any) -> dict[str, Any]:
        return h(
            sid,
            seq,
            "/search?q=" + term.replace(" ", "+"),
            event="search",
            search_query=term,
            search_results=results,
            **kw,
        )

    return [
        # A: a search, a result, back to the results (pogo-stick), refined twice, left
        search("A", 1, "Shoes", 12, next_page="/p/1"),
        h("A", 2, "/p/1", prev_page="/search?q=Shoes", next_page="/search?q=Shoes"),
        h(
            "A",
            3,
            "/search?q=Shoes",
            search_query="Shoes",
            is_back_loop=1,
            is_quick_back=1,
            nav="back_forward",
            prev_page="/p/1",
            next_page="/search?q=red+shoes",
        ),
        search("A", 4, "red shoes", 0, is_dead_end_search=1, next_page="/search?q=red+shoes+cheap"),
        search("A", 5, "red shoes cheap", 3, is_dead_end_search=1),
        # B: the same term in other case, opens a result
        search("B", 1, "shoes", 12, next_page="/p/2"),
        h("B", 2, "/p/2", prev_page="/search?q=shoes"),
        # C: nothing found, leaves
        search("C", 1, "socks", 0, is_dead_end_search=1),
        # D: / -> /a -> / (quick, back button) -> /b -> / (slow)
        h("D", 1, "/", next_page="/a"),
        h("D", 2, "/a", prev_page="/", next_page="/"),
        h(
            "D",
            3,
            "/",
            prev_page="/a",
            next_page="/b",
            is_back_loop=1,
            is_quick_back=1,
            nav="back_forward",
        ),
        h("D", 4, "/b", prev_page="/", next_page="/"),
        h("D", 5, "/", prev_page="/b", is_back_loop=1),
    ]


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    load(chdb_client, name, "hits", _hits())
    load(
        chdb_client,
        name,
        "sessions",
        [
            session(session_id="A", visitor_id="vA", start=DAY + "01", back_loops=1, quick_backs=1),
            session(session_id="B", visitor_id="vB", start=DAY + "01"),
            session(session_id="C", visitor_id="vC", start=DAY + "01"),
            session(session_id="D", visitor_id="vD", start=DAY + "01", back_loops=2, quick_backs=1),
        ],
    )
    return name


def report(client: Client, db: str, name: str, **extra: str) -> dict[str, Any]:
    params = {"site": ["shop"], "from": ["2024-02-01"], "to": ["2024-02-01"]}
    params.update({k: [v] for k, v in extra.items()})
    return run(ReportQuery.parse(name, params), client, database=db)


def term(
    name: str,
    searches: int,
    visitors: int,
    zero: int,
    exits: int,
    dead: int,
    pogo: int,
    avg: float,
    success: float,
) -> dict[str, Any]:
    return {
        "term": name,
        "searches": searches,
        "visitors": visitors,
        "zero_results": zero,
        "exits": exits,
        "dead_ends": dead,
        "pogo_sticks": pogo,
        "avg_results": avg,
        "success_rate": success,
    }


SHOES = term("shoes", 2, 2, 0, 0, 0, 1, 12.0, 1.0)
RED = term("red shoes", 1, 1, 1, 0, 1, 0, 0.0, 0.0)
CHEAP = term("red shoes cheap", 1, 1, 0, 1, 1, 0, 3.0, 0.0)
SOCKS = term("socks", 1, 1, 1, 1, 1, 0, 0.0, 0.0)


def test_searches_terms_zero_results_and_exits(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "searches")
    assert out["terms"] == [SHOES, RED, CHEAP, SOCKS]
    assert out["zero_result_terms"] == [RED, SOCKS]
    assert out["search_exits"] == [CHEAP, SOCKS]
    assert out["totals"] == {
        "searches": 5,
        "searchers": 3,
        "sessions_with_search": 3,
        "zero_results": 2,
        "exits": 2,
        "dead_ends": 3,
        "pogo_sticks": 1,
        "dead_end_rate": 0.6,
    }


def test_searches_refinements_and_pogo_sticking(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "searches")
    # shoes -> red shoes is not a refinement: a result page was opened in between
    assert out["refinements"] == [{"term": "red shoes", "next_term": "red shoes cheap", "n": 1}]
    assert out["pogo_sticking"] == [{"term": "shoes", "pogo_sticks": 1}]


def test_searches_limit_keeps_each_list_to_its_own_top(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "searches", limit="1")
    assert out["terms"] == [SHOES]
    assert out["zero_result_terms"] == [RED]
    assert out["search_exits"] == [CHEAP]


def test_backloops_pages_pairs_and_sessions(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "backloops")
    assert out["totals"] == {
        "sessions": 4,
        "sessions_with_back_loops": 2,
        "back_looping_sessions": 1,
        "back_loops": 3,
        "quick_backs": 2,
        "back_looping_share": 0.25,
        "back_loop_share": 0.5,
    }
    assert out["pages"] == [
        {"page": "/", "back_loops": 2, "quick_backs": 1, "back_button": 1, "sessions": 1},
        {
            "page": "/search?q=Shoes",
            "back_loops": 1,
            "quick_backs": 1,
            "back_button": 1,
            "sessions": 1,
        },
    ]
    assert out["pairs"] == [
        {"a": "/", "b": "/a", "back_loops": 1, "quick_backs": 1, "back_button": 1, "sessions": 1},
        {"a": "/", "b": "/b", "back_loops": 1, "quick_backs": 0, "back_button": 0, "sessions": 1},
        {
            "a": "/search?q=Shoes",
            "b": "/p/1",
            "back_loops": 1,
            "quick_backs": 1,
            "back_button": 1,
            "sessions": 1,
        },
    ]
