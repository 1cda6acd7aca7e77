"""Parameter parsing: limits and messages a user can act on (pure, no engine)."""

from __future__ import annotations

from datetime import UTC, date

import pytest

from reports.query import QueryError, ReportQuery, glob_to_like, parse_window

TODAY = date(2024, 6, 30)


def parse(name: str, **params: str | list[str]) -> ReportQuery:
    raw = {k.rstrip("_"): v if isinstance(v, list) else [v] for k, v in params.items()}
    return ReportQuery.parse(name, raw, today=TODAY)


def error(name: str, **params: str | list[str]) -> str:
    with pytest.raises(QueryError) as exc:
        parse(name, **params)
    return str(exc.value)


def test_defaults_last_30_days() -> None:
    q = parse("overview", site="shop")
    assert (q.date_from, q.date_to, q.limit, q.format) == (date(2024, 6, 1), TODAY, 10, "json")
    assert q.params() == {"site": "shop", "d_from": date(2024, 6, 1), "d_to": TODAY}


def test_funnel_params() -> None:
    q = parse(
        "funnel",
        site="s",
        step=["/", "/p/*", "event:buy"],
        window="30m",
        by="session",
        mode="strict",
        breakdown="campaign",
    )
    assert [(s.kind, s.value) for s in q.steps] == [
        ("path", "/"),
        ("path", "/p/%"),
        ("event", "buy"),
    ]
    assert (q.window_s, q.by, q.mode, q.breakdown) == (1800, "session", "strict", "utm_campaign")
    assert parse("funnel", site="s", step="/").window_s == 86400


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nope", {"site": "s"}, "unknown report 'nope'; reports: overview, funnel"),
        ("overview", {}, "site is required"),
        ("overview", {"site": " "}, "site is required"),
        ("overview", {"site": "s" * 129}, "site is longer than 128 characters"),
        ("overview", {"site": "a\x00b"}, "site contains control characters"),
        ("overview", {"site": "s", "from": "2024-13-01"}, "from is not a calendar date"),
        ("overview", {"site": "s", "to": "24-01-01"}, "to must be a date YYYY-MM-DD"),
        ("overview", {"site": "s", "from": "2024-02-01", "to": "2024-01-01"}, "is after to"),
        (
            "overview",
            {"site": "s", "from": "2020-01-01", "to": "2024-01-01"},
            "longer than 366 days",
        ),
        ("overview", {"site": "s", "from": "1999-12-31", "to": "2000-01-01"}, "before 2000-01-01"),
        # ClickHouse clamps a later Date to 2149-06-06: recency would be counted to that day
        ("overview", {"site": "s", "from": "2150-01-01", "to": "2150-01-02"}, "after 2149-06-06"),
        ("overview", {"site": "s", "limit": "0"}, "limit must be from 1 to 100000"),
        ("overview", {"site": "s", "limit": "ten"}, "limit must be a whole number"),
        ("overview", {"site": "s", "limit": "-1"}, "limit must be a whole number"),
        # Unicode digits (fullwidth, Arabic-Indic) are not numbers here: int() would take them
        ("overview", {"site": "s", "limit": "\uff11"}, "limit must be a whole number"),
        ("returning", {"site": "s", "weeks": "\u0661"}, "weeks must be a whole number"),
        (
            "overview",
            {"site": "s", "from": "\u0662\u0660\u0662\u0664-01-01"},
            "from must be a date",
        ),
        ("funnel", {"site": "s", "step": "/", "window": "\uff13\uff10m"}, "bad window"),
        ("overview", {"site": "s", "format": "xml"}, "bad format 'xml'; accepted: json, csv"),
        ("overview", {"site": "s", "crm": "yes"}, "accepted: any, linked, anonymous"),
        ("overview", {"site": "s", "interval": "week"}, "bad interval"),
        ("overview", {"site": "s", "step": "/"}, "unknown parameter 'step' for report overview"),
        ("overview", {"site": ["a", "b"]}, "parameter site given 2 times"),
        ("overview", {"site": "s", "channel": "x" * 3000}, "longer than 2000 characters"),
        ("overview", {"site": "s", "table": "steps;drop"}, "bad table"),
        ("funnel", {"site": "s"}, "a funnel needs step="),
        ("funnel", {"site": "s", "step": ["/"] * 11}, "at most 10 steps, got 11"),
        ("funnel", {"site": "s", "step": "/" + "a" * 200}, "longer than 200 characters"),
        ("funnel", {"site": "s", "step": "cart"}, "must be a path glob starting with /"),
        ("funnel", {"site": "s", "step": ""}, "empty funnel step"),
        ("funnel", {"site": "s", "step": "event:a b"}, "bad event name"),
        ("funnel", {"site": "s", "step": "/", "window": "1w"}, "bad window '1w'"),
        ("funnel", {"site": "s", "step": "/", "window": "0s"}, "between 1s and 90d"),
        ("funnel", {"site": "s", "step": "/", "window": "91d"}, "between 1s and 90d"),
        ("funnel", {"site": "s", "step": "/", "by": "user"}, "bad by 'user'"),
        (
            "funnel",
            {"site": "s", "step": "/", "mode": "strict_increase"},
            "accepted: default, strict",
        ),
        (
            "funnel",
            {"site": "s", "step": "/", "breakdown": "utm_campaign"},
            "accepted: channel, device, country, campaign, browser, os",
        ),
        ("paths", {"site": "s", "depth": "11"}, "depth must be from 1 to 10"),
        ("returning", {"site": "s", "weeks": "27"}, "weeks must be from 1 to 26"),
        ("customers", {"site": "s", "crm_id": "c" * 129}, "crm_id is longer than 128"),
    ],
)
def test_bad_params_are_rejected_with_a_message(
    name: str, params: dict[str, str], message: str
) -> None:
    assert message in error(name, **params)


def test_error_message_quotes_hostile_values_safely() -> None:
    msg = error("overview", site="s", format="<script>" + "x" * 100)
    assert "…" in msg and len(msg) < 200


def test_glob_to_like_escapes_like_wildcards() -> None:
    assert glob_to_like("/a_b%c\\d*") == "/a\\_b\\%c\\\\d%"


def test_parse_window_units() -> None:
    assert [parse_window(w) for w in ("45", "45s", "2m", "3h", "7d")] == [
        45,
        45,
        120,
        10800,
        604800,
    ]


def test_default_to_is_today_in_the_sites_time_zone() -> None:
    from datetime import datetime

    from clickstream.settings import load
    from reports.query import parse_for_site

    # 01:00 UTC on 8 Dec is still 7 Dec (20:00) in New York
    now = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
    params = {"site": ["shop"]}
    ny = parse_for_site(
        "overview", params, load(flags={"time_zone": "America/New_York"}, env={}), now
    )
    assert (ny.date_from, ny.date_to, ny.time_zone) == (
        date(2026, 11, 8),
        date(2026, 12, 7),
        "America/New_York",
    )
    utc = parse_for_site("overview", params, load(flags={}, env={}), now)
    assert (utc.date_to, utc.time_zone) == (date(2026, 12, 8), "UTC")
    # explicit days are kept as given
    given = parse_for_site("overview", {"site": ["shop"], "to": ["2026-12-08"]}, None, now)
    assert given.date_to == date(2026, 12, 8)
