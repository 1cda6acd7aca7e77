"""Overview and paths over three sessions of two visitors (plus a bot)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from reports.query import ReportQuery
from reports.run import run
from tests.reports.report_rows import hit, load, session


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    s = session
    load(
        chdb_client,
        name,
        "sessions",
        [
            s(
                session_id="s1",
                visitor_id="v1",
                start="2024-01-10 10:00:00",
                duration_s=60,
                pageviews=3,
                entry_path="/",
                exit_path="/cart",
                paths=["/", "/product/a", "/cart"],
                channel="search",
                referrer="https://www.google.com/search",
                is_bounce=0,
            ),
            s(
                session_id="s2",
                visitor_id="v1",
                start="2024-01-11 09:00:00",
                duration_s=0,
                pageviews=1,
                device_type="mobile",
                browser="Safari",
                country="FR",
            ),
            s(
                session_id="s3",
                visitor_id="v2",
                start="2024-01-11 18:00:00",
                duration_s=30,
                pageviews=2,
                entry_path="/blog",
                exit_path="/",
                paths=["/blog", "/"],
                channel="social",
                referrer="https://t.co/x",
                browser="Firefox",
                is_bounce=0,
            ),
            s(session_id="s4", visitor_id="bot", start="2024-01-11 18:00:00", is_bot=1),
        ],
    )
    h = hit
    load(
        chdb_client,
        name,
        "hits",
        [
            h(
                session_id="s1",
                visitor_id="v1",
                ts="2024-01-10 10:00:00",
                path="/",
                next_page="/product/a",
            ),
            h(
                session_id="s1",
                visitor_id="v1",
                ts="2024-01-10 10:00:20",
                path="/product/a",
                prev_page="/",
                next_page="/cart",
            ),
            h(session_id="s1", visitor_id="v1", ts="2024-01-10 10:00:30", event="click"),
            h(
                session_id="s1",
                visitor_id="v1",
                ts="2024-01-10 10:01:00",
                path="/cart",
                prev_page="/product/a",
            ),
            h(session_id="s2", visitor_id="v1", ts="2024-01-11 09:00:00", path="/"),
            h(
                session_id="s3",
                visitor_id="v2",
                ts="2024-01-11 18:00:00",
                path="/blog",
                next_page="/",
            ),
            h(
                session_id="s3",
                visitor_id="v2",
                ts="2024-01-11 18:00:30",
                path="/",
                prev_page="/blog",
            ),
            h(session_id="s4", visitor_id="bot", ts="2024-01-11 18:00:00", path="/", is_bot=1),
        ],
    )
    return name


def report(client: Client, db: str, name: str, **extra: str) -> dict[str, Any]:
    params = {"site": ["shop"], "from": ["2024-01-09"], "to": ["2024-01-11"]}
    params.update({k: [v] for k, v in extra.items()})
    return run(ReportQuery.parse(name, params), client, database=db)


def test_overview_totals_series_and_top_pages(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "overview")
    assert out["totals"] == {
        "visitors": 2,
        "sessions": 3,
        "pageviews": 6,
        "bounce_rate": 0.3333,
        "median_session_seconds": 30.0,
    }
    assert out["series"] == [
        {"t": "2024-01-09", "visitors": 0, "sessions": 0, "pageviews": 0},
        {"t": "2024-01-10", "visitors": 1, "sessions": 1, "pageviews": 3},
        {"t": "2024-01-11", "visitors": 2, "sessions": 2, "pageviews": 3},
    ]
    assert out["top_pages"] == [
        {"page": "/", "pageviews": 3, "visitors": 2},
        {"page": "/blog", "pageviews": 1, "visitors": 1},
        {"page": "/cart", "pageviews": 1, "visitors": 1},
        {"page": "/product/a", "pageviews": 1, "visitors": 1},
    ]


def test_overview_breakdowns(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "overview")

    def pick(name: str) -> list[tuple[str, int]]:
        return [(r["value"], r["sessions"]) for r in out[name]]

    assert pick("entry_pages") == [("/", 2), ("/blog", 1)]
    assert pick("exit_pages") == [("/", 2), ("/cart", 1)]
    assert pick("channels") == [("direct", 1), ("search", 1), ("social", 1)]
    assert pick("referrers") == [("t.co", 1), ("www.google.com", 1)]
    assert pick("devices") == [("desktop", 2), ("mobile", 1)]
    assert pick("browsers") == [("Chrome", 1), ("Firefox", 1), ("Safari", 1)]
    assert pick("countries") == [("DE", 2), ("FR", 1)]


def test_overview_segment_filters(chdb_client: Client, db: str) -> None:
    assert report(chdb_client, db, "overview", device="mobile")["totals"]["sessions"] == 1
    assert report(chdb_client, db, "overview", country="DE", channel="social")["totals"] == {
        "visitors": 1,
        "sessions": 1,
        "pageviews": 2,
        "bounce_rate": 0.0,
        "median_session_seconds": 30.0,
    }
    assert report(chdb_client, db, "overview", crm="linked")["totals"]["sessions"] == 0
    assert report(chdb_client, db, "overview", crm="anonymous")["totals"]["sessions"] == 3


def test_overview_hourly_series(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "overview", interval="hour", **{"from": "2024-01-11"})
    # every hour of the range, a quiet one as 0 (as the daily series)
    quiet = {"visitors": 0, "sessions": 0, "pageviews": 0}
    busy = {
        "2024-01-11T09:00:00Z": {"visitors": 1, "sessions": 1, "pageviews": 1},
        "2024-01-11T18:00:00Z": {"visitors": 1, "sessions": 1, "pageviews": 2},
    }
    assert out["query"]["from"] == "2024-01-11"
    days = (date.fromisoformat(out["query"]["to"]) - date(2024, 1, 11)).days + 1
    assert [r["t"] for r in out["series"]][:2] == ["2024-01-11T00:00:00Z", "2024-01-11T01:00:00Z"]
    assert len(out["series"]) == 24 * days
    assert [r for r in out["series"] if r != {"t": r["t"], **quiet}] == [
        {"t": t, **v} for t, v in busy.items()
    ]


def test_paths_top_paths_and_transitions_of_the_top_page(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "paths", depth="2")
    assert out["top_paths"] == [
        {"path": ["/"], "sessions": 1, "visitors": 1},
        {"path": ["/", "/product/a"], "sessions": 1, "visitors": 1},
        {"path": ["/blog", "/"], "sessions": 1, "visitors": 1},
    ]
    assert out["transitions"] == {"page": "/", "pageviews": 3}
    assert out["previous"] == [
        {"page": "(entrance)", "count": 2, "share": 0.6667},
        {"page": "/blog", "count": 1, "share": 0.3333},
    ]
    assert out["next"] == [
        {"page": "(exit)", "count": 2, "share": 0.6667},
        {"page": "/product/a", "count": 1, "share": 0.3333},
    ]


def test_paths_transitions_of_a_chosen_page(chdb_client: Client, db: str) -> None:
    out = report(chdb_client, db, "paths", page="/product/a")
    assert out["transitions"] == {"page": "/product/a", "pageviews": 1}
    assert out["previous"] == [{"page": "/", "count": 1, "share": 1.0}]
    assert out["next"] == [{"page": "/cart", "count": 1, "share": 1.0}]
    out = report(chdb_client, db, "paths", page="/nowhere")
    assert out["previous"] == [] and out["next"] == []
    assert out["transitions"] == {"page": "/nowhere", "pageviews": 0}


def test_overview_hourly_series_covers_the_site_days_in_utc_hours() -> None:
    from dataclasses import replace

    from reports.shape import overview

    q = ReportQuery.parse(
        "overview",
        {"site": ["s"], "from": ["2024-01-11"], "to": ["2024-01-11"], "interval": ["hour"]},
    )
    empty = {"sessions": [], "totals": [], "top_pages": []}
    empty |= {name: [] for name in ("entry_pages", "exit_pages")}
    # 11 Jan in Kolkata (UTC+5:30) is 10 Jan 18:30 .. 11 Jan 18:30 UTC: 25 UTC hours, partly
    series = overview(replace(q, time_zone="Asia/Kolkata"), empty)["series"]
    assert (series[0]["t"], series[-1]["t"], len(series)) == (
        "2024-01-10T18:00:00Z",
        "2024-01-11T18:00:00Z",
        25,
    )
