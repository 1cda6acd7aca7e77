"""Segment filters on the reports read from hits: channel, device, country and crm are
attributes of the session, so every hit of a session in the segment counts.

A campaign landing is the only hit that carries the campaign's channel: the pages after
it arrive by internal links (their own channel is ``direct``), yet belong to the email
session.  One session starts the day before the range and has a hit in it.
"""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from reports.query import ReportQuery
from reports.run import run
from tests.reports.report_rows import hit, identity, load, session


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    load(
        chdb_client,
        name,
        "sessions",
        [
            session(
                session_id="e1",
                visitor_id="v1",
                start="2024-03-05 10:00:00",
                channel="email",
                pageviews=3,
                paths=["/", "/search?q=xyz", "/"],
            ),
            session(session_id="d1", visitor_id="v2", start="2024-03-05 11:00:00"),
            # started before the range, its last hit is in it
            session(
                session_id="e0",
                visitor_id="v3",
                start="2024-03-04 23:50:00",
                channel="email",
                pageviews=2,
                paths=["/", "/cart"],
            ),
            session(
                session_id="c1",
                visitor_id="v4",
                crm_id="C1",
                start="2024-03-05 12:00:00",
                pageviews=2,
                paths=["/", "/cart"],
            ),
        ],
    )
    load(chdb_client, name, "identities", [identity("v4", "C1", "2024-03-05 12:00:10")])

    def h(sid: str, vid: str, ts: str, page: str, **kw: Any) -> dict[str, Any]:
        return hit(session_id=sid, visitor_id=vid, ts=ts, path=page.split("?")[0], page=page, **kw)

    load(
        chdb_client,
        name,
        "hits",
        [
            h("e1", "v1", "2024-03-05 10:00:00", "/", channel="email", next_page="/search?q=xyz"),
            h(
                "e1",
                "v1",
                "2024-03-05 10:00:20",
                "/search?q=xyz",
                seq=2,
                event="search",
                search_query="xyz",
                search_results=0,
                is_dead_end_search=1,
                prev_page="/",
                next_page="/",
            ),
            h(
                "e1",
                "v1",
                "2024-03-05 10:00:25",
                "/",
                seq=3,
                prev_page="/search?q=xyz",
                is_back_loop=1,
                is_quick_back=1,
            ),
            h("d1", "v2", "2024-03-05 11:00:00", "/"),
            h("e0", "v3", "2024-03-04 23:50:00", "/", channel="email", next_page="/cart"),
            h("e0", "v3", "2024-03-05 00:10:00", "/cart", seq=2, prev_page="/"),
            # the login hit carries the CRM id; the page before it belongs to the session too
            h("c1", "v4", "2024-03-05 12:00:00", "/", next_page="/cart"),
            h("c1", "v4", "2024-03-05 12:00:10", "/cart", seq=2, prev_page="/", crm_id="C1"),
        ],
    )
    return name


def report(client: Client, db: str, name: str, **extra: str | list[str]) -> dict[str, Any]:
    params: dict[str, list[str]] = {"site": ["shop"], "from": ["2024-03-05"], "to": ["2024-03-05"]}
    params.update({k: v if isinstance(v, list) else [v] for k, v in extra.items()})
    return run(ReportQuery.parse(name, params), client, database=db)


def test_overview_top_pages_count_every_page_of_the_segments_sessions(
    chdb_client: Client, db: str
) -> None:
    out = report(chdb_client, db, "overview", channel="email")
    assert out["top_pages"] == [
        {"page": "/", "pageviews": 2, "visitors": 1},
        {"page": "/cart", "pageviews": 1, "visitors": 1},
        {"page": "/search?q=xyz", "pageviews": 1, "visitors": 1},
    ]
    direct = report(chdb_client, db, "overview", channel="direct")["top_pages"]
    assert direct == [
        {"page": "/", "pageviews": 2, "visitors": 2},
        {"page": "/cart", "pageviews": 1, "visitors": 1},
    ]


def test_searches_and_backloops_in_a_channel(chdb_client: Client, db: str) -> None:
    searches = report(chdb_client, db, "searches", channel="email")["totals"]
    assert (searches["searches"], searches["dead_ends"]) == (1, 1)
    assert report(chdb_client, db, "searches", channel="direct")["totals"]["searches"] == 0
    loops = report(chdb_client, db, "backloops", channel="email")["pages"]
    assert [(r["page"], r["back_loops"]) for r in loops] == [("/", 1)]


def test_funnel_and_transitions_in_a_channel(chdb_client: Client, db: str) -> None:
    steps = report(chdb_client, db, "funnel", channel="email", step=["/", "/search*"])["steps"]
    assert [s["count"] for s in steps] == [1, 1]
    # the session that began the day before: its /cart hit is in the range and in the segment
    cart = report(chdb_client, db, "funnel", channel="email", step=["/cart"])["steps"]
    assert [s["count"] for s in cart] == [1]
    paths = report(chdb_client, db, "paths", channel="email", page="/")
    assert [(r["page"], r["count"]) for r in paths["next"]] == [("(exit)", 1), ("/search?q=xyz", 1)]


def test_crm_linked_counts_the_pages_before_the_login(chdb_client: Client, db: str) -> None:
    top = report(chdb_client, db, "overview", crm="linked")["top_pages"]
    assert [(r["page"], r["pageviews"]) for r in top] == [("/", 1), ("/cart", 1)]
    anonymous = report(chdb_client, db, "overview", crm="anonymous")["top_pages"]
    assert [(r["page"], r["pageviews"]) for r in anonymous] == [
        ("/", 3),
        ("/cart", 1),
        ("/search?q=xyz", 1),
    ]
