"""Funnel over known hits: window boundary, out-of-order steps, strict order, sessions."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from reports.query import ReportQuery
from reports.run import run
from tests.reports.report_rows import hit, load

STEPS = ["/", "/product/*", "event:purchase"]


def _hits() -> list[dict[str, Any]]:
    h = hit
    return [
        # v1 converts fully: 600 s to the product, 1200 s more to the purchase (mobile)
        h(
            visitor_id="v1",
            session_id="s1a",
            ts="2024-01-10 10:00:00",
            path="/",
            next_page="/product/a",
            device_type="mobile",
        ),
        h(
            visitor_id="v1",
            session_id="s1a",
            ts="2024-01-10 10:10:00",
            path="/product/a",
            device_type="mobile",
        ),
        h(
            visitor_id="v1",
            session_id="s1b",
            ts="2024-01-10 10:30:00",
            event="purchase",
            device_type="mobile",
        ),
        # v2: product exactly at the 1 h window (counts), purchase 1 s past it (does not)
        h(visitor_id="v2", ts="2024-01-10 10:00:00", path="/", next_page="/product/b"),
        h(visitor_id="v2", ts="2024-01-10 11:00:00", path="/product/b", next_page="/cart"),
        h(visitor_id="v2", ts="2024-01-10 11:00:01", event="purchase"),
        # v3: product before home: out of order, only step 1
        h(visitor_id="v3", ts="2024-01-10 09:00:00", path="/product/a", next_page="/"),
        h(visitor_id="v3", ts="2024-01-10 09:05:00", path="/"),
        # v4: an other page between the steps: level 2, but 1 in strict order
        h(visitor_id="v4", ts="2024-01-10 12:00:00", path="/", next_page="/about"),
        h(visitor_id="v4", ts="2024-01-10 12:01:00", path="/about", next_page="/product/c"),
        h(visitor_id="v4", ts="2024-01-10 12:02:00", path="/product/c"),
        # v5: never starts the funnel
        h(visitor_id="v5", ts="2024-01-10 12:00:00", path="/about"),
        # v6: product 1 ms after the window
        h(visitor_id="v6", ts="2024-01-10 08:00:00", path="/", next_page="/product/x"),
        h(visitor_id="v6", ts="2024-01-10 09:00:00.001", path="/product/x"),
        # v10: a search page, matched on path + query when the step has a '?'
        h(
            visitor_id="v10",
            ts="2024-01-10 13:00:00",
            event="search",
            path="/search",
            page="/search?q=shoes",
        ),
        # other site, other day, bot: never counted
        h(visitor_id="v7", site="other", ts="2024-01-10 10:00:00", path="/"),
        h(visitor_id="v8", ts="2024-01-12 10:00:00", path="/"),
        h(visitor_id="v9", ts="2024-01-10 10:00:00", path="/", is_bot=1),
    ]


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    load(chdb_client, name, "hits", _hits())
    return name


def funnel(client: Client, db: str, **extra: str | list[str]) -> dict[str, Any]:
    params: dict[str, list[str]] = {
        "site": ["shop"],
        "from": ["2024-01-10"],
        "to": ["2024-01-10"],
        "step": STEPS,
        "window": ["1h"],
    }
    params.update({k: v if isinstance(v, list) else [v] for k, v in extra.items()})
    return run(ReportQuery.parse("funnel", params), client, database=db)


def test_funnel_counts_conversion_dropoff_and_medians(chdb_client: Client, db: str) -> None:
    out = funnel(chdb_client, db)
    assert out["steps"] == [
        {
            "step": "/",
            "count": 5,
            "conversion": 1.0,
            "dropoff": 0,
            "dropoff_rate": 0.0,
            "median_seconds_from_previous": None,
        },
        {
            "step": "/product/*",
            "count": 3,
            "conversion": 0.6,
            "dropoff": 2,
            "dropoff_rate": 0.4,
            "median_seconds_from_previous": 600.0,
        },  # v4 120 s, v1 600 s, v2 3600 s
        {
            "step": "event:purchase",
            "count": 1,
            "conversion": 0.2,
            "dropoff": 2,
            "dropoff_rate": 0.6667,
            "median_seconds_from_previous": 1200.0,
        },
    ]


def test_funnel_where_dropouts_went_next(chdb_client: Client, db: str) -> None:
    out = funnel(chdb_client, db)
    assert out["dropoff_next"] == [
        {"after_step": "/", "next_page": "(exit)", "count": 1},  # v3
        {"after_step": "/", "next_page": "/product/x", "count": 1},  # v6, too late
        {"after_step": "/product/*", "next_page": "(exit)", "count": 1},  # v4
        {"after_step": "/product/*", "next_page": "/cart", "count": 1},  # v2
    ]


def test_funnel_window_boundary_is_inclusive(chdb_client: Client, db: str) -> None:
    # 3600 s window: v2's product at exactly +3600 s counts; v6's at +3600.001 s does not
    assert [s["count"] for s in funnel(chdb_client, db, window="3600s")["steps"]] == [5, 3, 1]
    # one second shorter: v2's product no longer counts
    assert [s["count"] for s in funnel(chdb_client, db, window="3599s")["steps"]] == [5, 2, 1]
    # a day: v6 reaches the product, v2 the purchase
    assert [s["count"] for s in funnel(chdb_client, db, window="1d")["steps"]] == [5, 4, 2]


def test_funnel_strict_order_breaks_on_an_other_page(chdb_client: Client, db: str) -> None:
    assert [s["count"] for s in funnel(chdb_client, db, mode="strict")["steps"]] == [5, 2, 1]


def test_funnel_by_session(chdb_client: Client, db: str) -> None:
    # v1's purchase is in another session, so no session completes the funnel
    out = funnel(chdb_client, db, by="session")
    assert [s["count"] for s in out["steps"]] == [5, 3, 0]


def test_funnel_breakdown_by_device(chdb_client: Client, db: str) -> None:
    out = funnel(chdb_client, db, breakdown="device")
    assert out["breakdown"] == [
        {"value": "desktop", "counts": [4, 2, 0], "conversion": 0.0},
        {"value": "mobile", "counts": [1, 1, 1], "conversion": 1.0},
    ]


def test_funnel_glob_is_literal_apart_from_star(chdb_client: Client, db: str) -> None:
    # '_' and '%' in a step are literal characters, not LIKE wildcards
    out = funnel(chdb_client, db, step=["/product_a", "/%"])
    assert [s["count"] for s in out["steps"]] == [0, 0]
    out = funnel(chdb_client, db, step=["/product/?", "/*"])  # '?' matches page with query
    assert [s["count"] for s in out["steps"]] == [0, 0]
    out = funnel(chdb_client, db, step=["/prod*", "/"])
    assert [s["count"] for s in out["steps"]] == [5, 1]  # only v3 goes /product/a -> /
    assert [s["count"] for s in funnel(chdb_client, db, step=["/search?q=*"])["steps"]] == [1]
    assert [s["count"] for s in funnel(chdb_client, db, step=["/search"])["steps"]] == [1]


def test_funnel_of_the_most_steps_with_events_and_a_hit_matching_two_steps(
    chdb_client: Client, fresh_db: Any
) -> None:
    # ten steps (the limit): a bit each in the step mask; /s/5 matches steps 5 and 6
    steps = [f"/s/{i}" for i in range(1, 6)] + ["/s/*", "event:e7", "/s/8", "/s/9", "event:e10"]
    name = fresh_db()
    rows = []
    for v, reached in (("va", 10), ("vb", 9), ("vc", 7)):
        for i in range(1, reached + 1):
            if i == 6:  # step 6 (/s/*) is the /s/5 hit itself
                continue
            event = f"e{i}" if i in (7, 10) else "pageview"
            path = "" if event != "pageview" else f"/s/{i}"
            rows.append(
                hit(
                    visitor_id=v,
                    ts=f"2024-01-10 10:{i:02d}:00",
                    event=event,
                    path=path,
                    page=path,
                    next_page=f"/s/{i + 1}" if i < reached else "",
                )
            )
    load(chdb_client, name, "hits", rows)
    out = funnel(chdb_client, name, step=steps)
    assert [s["count"] for s in out["steps"]] == [3, 3, 3, 3, 3, 3, 3, 2, 2, 1]
    # step 6 shares step 5's hit: no time between them; the others are a minute apart
    assert [s["median_seconds_from_previous"] for s in out["steps"]] == [
        None,
        60.0,
        60.0,
        60.0,
        60.0,
        0.0,
        120.0,
        60.0,
        60.0,
        60.0,
    ]
    assert out["dropoff_next"] == [
        {"after_step": "event:e7", "next_page": "(exit)", "count": 1},
        {"after_step": "/s/9", "next_page": "(exit)", "count": 1},
    ]


def test_funnel_strict_order_counts_a_later_clean_attempt(
    chdb_client: Client, fresh_db: Any
) -> None:
    # windowFunnel's strict_order stops at the first other page after step 1 and never
    # tries a later start; "no other page between steps" is met by v1's second attempt
    name = fresh_db()
    h = hit
    load(
        chdb_client,
        name,
        "hits",
        [
            h(visitor_id="v1", ts="2024-01-10 10:00:00", path="/"),
            h(visitor_id="v1", ts="2024-01-10 10:01:00", path="/about"),
            h(visitor_id="v1", ts="2024-01-10 10:30:00", path="/"),
            h(visitor_id="v1", ts="2024-01-10 10:31:00", path="/product/a"),
            h(visitor_id="v1", ts="2024-01-10 10:32:00", event="purchase"),
            # an other page between the steps: step 1 only
            h(visitor_id="v2", ts="2024-01-10 10:00:00", path="/"),
            h(visitor_id="v2", ts="2024-01-10 10:01:00", path="/about"),
            h(visitor_id="v2", ts="2024-01-10 10:02:00", path="/product/a"),
            # home reloaded, then the product: clean
            h(visitor_id="v3", ts="2024-01-10 10:00:00", path="/"),
            h(visitor_id="v3", ts="2024-01-10 10:00:05", path="/"),
            h(visitor_id="v3", ts="2024-01-10 10:01:00", path="/product/a"),
            # a clean attempt first, a broken one later: the clean one counts
            h(visitor_id="v4", ts="2024-01-10 09:00:00", path="/"),
            h(visitor_id="v4", ts="2024-01-10 09:00:10", path="/product/a"),
            h(visitor_id="v4", ts="2024-01-10 09:30:00", path="/"),
            h(visitor_id="v4", ts="2024-01-10 09:31:00", path="/about"),
            # home between the product and the purchase: the chain ends at the product
            # (windowFunnel's strict_order let the purchase follow: level 3)
            h(visitor_id="v5", ts="2024-01-10 10:00:00", path="/"),
            h(visitor_id="v5", ts="2024-01-10 10:01:00", path="/product/a"),
            h(visitor_id="v5", ts="2024-01-10 10:02:00", path="/"),
            h(visitor_id="v5", ts="2024-01-10 10:03:00", event="purchase"),
        ],
    )
    out = funnel(chdb_client, name, mode="strict")
    assert [s["count"] for s in out["steps"]] == [5, 4, 1]
    assert [s["count"] for s in funnel(chdb_client, name)["steps"]] == [5, 5, 2]
