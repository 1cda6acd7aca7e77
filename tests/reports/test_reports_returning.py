"""New vs returning visitors: first-ever session decides, once per visitor per day."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from reports.query import ReportQuery
from reports.run import run
from tests.reports.report_rows import load, session


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    s = session
    load(
        chdb_client,
        name,
        "sessions",
        [
            # a: first seen before the range, twice on the 10th, on the 12th from a phone
            s(visitor_id="a", start="2024-01-05 12:00:00"),
            s(visitor_id="a", start="2024-01-10 09:00:00"),
            s(visitor_id="a", start="2024-01-10 15:00:00"),
            s(visitor_id="a", start="2024-01-12 12:00:00", device_type="mobile"),
            # b: new on the 10th, back on the 11th and (next week) the 15th
            s(visitor_id="b", start="2024-01-10 23:59:59"),
            s(visitor_id="b", start="2024-01-11 00:00:00"),
            s(visitor_id="b", start="2024-01-15 08:00:00"),
            # c: new on the 11th; d: new on the 12th, on a phone
            s(visitor_id="c", start="2024-01-11 10:00:00"),
            s(visitor_id="d", start="2024-01-12 10:00:00", device_type="mobile"),
            # e: first seen after the range; a bot; another site
            s(visitor_id="e", start="2024-01-20 10:00:00"),
            s(visitor_id="bot", start="2024-01-10 10:00:00", is_bot=1),
            s(visitor_id="x", site="other", start="2024-01-10 10:00:00"),
        ],
    )
    return name


def returning(client: Client, db: str, **extra: str) -> dict[str, Any]:
    params = {"site": ["shop"], "from": ["2024-01-10"], "to": ["2024-01-16"], "weeks": ["2"]}
    params.update({k: [v] for k, v in extra.items()})
    return run(ReportQuery.parse("returning", params), client, database=db)


def test_returning_days_and_totals(chdb_client: Client, db: str) -> None:
    out = returning(chdb_client, db)
    assert out["days"] == [
        {"date": "2024-01-10", "new_visitors": 1, "returning_visitors": 1},  # b new; a (twice) once
        {"date": "2024-01-11", "new_visitors": 1, "returning_visitors": 1},  # c; b
        {"date": "2024-01-12", "new_visitors": 1, "returning_visitors": 1},  # d; a
        {"date": "2024-01-13", "new_visitors": 0, "returning_visitors": 0},
        {"date": "2024-01-14", "new_visitors": 0, "returning_visitors": 0},
        {"date": "2024-01-15", "new_visitors": 0, "returning_visitors": 1},  # b
        {"date": "2024-01-16", "new_visitors": 0, "returning_visitors": 0},
    ]
    assert out["totals"] == {"visitors": 4, "new_visitors": 3, "returning_visitors": 2}


def test_returning_histograms(chdb_client: Client, db: str) -> None:
    out = returning(chdb_client, db)
    assert out["frequency"] == [{"sessions": "1", "visitors": 2}, {"sessions": "3", "visitors": 2}]
    # a: 5 days (4-7), 0 days, 2 days (2-3); b: 1 day, 4 days (4-7)
    assert out["days_since_last_visit"] == [
        {"days": "0", "sessions": 1},
        {"days": "1", "sessions": 1},
        {"days": "2-3", "sessions": 1},
        {"days": "4-7", "sessions": 2},
    ]


def test_returning_weekly_cohorts(chdb_client: Client, db: str) -> None:
    # b, c and d were first seen in the week of Monday 2024-01-08; only b came back a week later
    assert returning(chdb_client, db)["cohorts"] == [
        {"cohort": "2024-01-08", "weeks": [3, 1], "visitors": 3, "retention": [1.0, 0.3333]},
    ]


def test_returning_first_visit_ignores_segment_filter(chdb_client: Client, db: str) -> None:
    # a's first phone session is on the 12th, but a was first seen on the 5th: returning
    out = returning(chdb_client, db, device="mobile")
    assert out["days"][2] == {"date": "2024-01-12", "new_visitors": 1, "returning_visitors": 1}
    assert out["totals"] == {"visitors": 2, "new_visitors": 1, "returning_visitors": 1}


def test_returning_cohort_weeks_after_the_range_are_null(chdb_client: Client, db: str) -> None:
    # to = Sunday the 14th: week 1 of the 2024-01-08 cohort has not started
    assert returning(chdb_client, db, to="2024-01-14")["cohorts"] == [
        {"cohort": "2024-01-08", "weeks": [3, None], "visitors": 3, "retention": [1.0, None]},
    ]


def test_returning_days_since_last_visit_in_a_segment(chdb_client: Client, db: str) -> None:
    # a's phone session on the 12th follows a's desktop session of the 10th (any device
    # counts as the previous visit); d's phone session is d's first: no gap
    out = returning(chdb_client, db, device="mobile")
    assert out["days_since_last_visit"] == [{"days": "2-3", "sessions": 1}]
    assert out["frequency"] == [{"sessions": "1", "visitors": 2}]


def test_returning_same_millisecond_sessions(chdb_client: Client, fresh_db: Any) -> None:
    # two sessions of one visitor starting together: the one outside the segment is taken
    # as the earlier, so the phone session counts, 0 days after the desktop one
    name = fresh_db()
    load(
        chdb_client,
        name,
        "sessions",
        [
            session(visitor_id="t", start="2024-01-11 10:00:00", device_type="mobile"),
            session(visitor_id="t", start="2024-01-11 10:00:00"),
        ],
    )
    out = returning(chdb_client, name, device="mobile")
    assert out["days_since_last_visit"] == [{"days": "0", "sessions": 1}]
    assert returning(chdb_client, name)["days_since_last_visit"] == [{"days": "0", "sessions": 1}]


def test_returning_days_are_the_sites_time_zone_days(chdb_client: Client, db: str) -> None:
    from clickstream.settings import load
    from reports.query import in_site_zone

    params = {"site": ["shop"], "from": ["2024-01-10"], "to": ["2024-01-12"], "weeks": ["2"]}
    query = ReportQuery.parse("returning", params)
    paris = in_site_zone(query, load(flags={"time_zone": "Europe/Paris"}, env={}))
    assert in_site_zone(query, load(flags={}, env={})) is query  # UTC: the same SQL as before
    out = run(paris, chdb_client, database=db)
    # b's sessions at 23:59:59 and 00:00:00 UTC are both past midnight in Paris (UTC+1)
    assert out["days"] == [
        {"date": "2024-01-10", "new_visitors": 0, "returning_visitors": 1},  # a
        {"date": "2024-01-11", "new_visitors": 2, "returning_visitors": 0},  # b, c
        {"date": "2024-01-12", "new_visitors": 1, "returning_visitors": 1},  # d; a
    ]
