"""Columns stored for the reports: ``day`` of hits and sessions (migrations 0021-0024) and
``session_hash`` of hits (0025-0026).

``day`` must be exactly the key expression ``toDate(ts)`` / ``toDate(start_ts)`` (UTC) and the
reports' date range on it must still let the primary key skip granules (``indexHint`` of the
key expression); ``session_hash`` is ``cityHash64(session_id)``. Neither is in ``SELECT *``
nor among the writer's columns.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from reports import sql
from reports.query import ReportQuery
from reports.run import run
from tests.reports.report_rows import hit, load, session

EDGES = [
    "2024-01-31 23:59:59.999",  # last instant of the 31st
    "2024-02-01 00:00:00.000",  # first of the 1st
    "2024-02-29 23:59:59.999",
    "2024-03-01 00:00:00.000",
]


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    load(
        chdb_client,
        name,
        "sessions",
        [
            session(session_id=f"s{i}", visitor_id=f"v{i}", start=t, paths=["/"], entry_path="/")
            for i, t in enumerate(EDGES)
        ],
    )
    load(
        chdb_client,
        name,
        "hits",
        [
            hit(hit_id=f"h{i}", session_id=f"s{i}", visitor_id=f"v{i}", ts=t, path="/", page="/")
            for i, t in enumerate(EDGES)
        ],
    )
    return name


def test_day_is_the_utc_date_of_the_timestamp(chdb_client: Client, db: str) -> None:
    hits = chdb_client.query(
        f"SELECT toString(ts), toString(day), day = toDate(ts) FROM {db}.hits ORDER BY ts"
    ).result_rows
    assert [(str(d), ok) for _, d, ok in hits] == [
        ("2024-01-31", 1),
        ("2024-02-01", 1),
        ("2024-02-29", 1),
        ("2024-03-01", 1),
    ]
    sessions = chdb_client.query(
        f"SELECT countIf(day = toDate(start_ts)), count() FROM {db}.sessions"
    ).result_rows[0]
    assert sessions == (4, 4)


def test_session_hash_is_the_hash_of_the_session_id(chdb_client: Client, db: str) -> None:
    rows = chdb_client.query(
        f"SELECT countIf(session_hash = cityHash64(session_id)), count() FROM {db}.hits"
    ).result_rows[0]
    assert rows == (4, 4)


@pytest.mark.parametrize(
    ("table", "column"), [("hits", "day"), ("sessions", "day"), ("hits", "session_hash")]
)
def test_stored_columns_are_not_in_select_star_nor_written(
    chdb_client: Client, db: str, table: str, column: str
) -> None:
    star = chdb_client.query(f"SELECT * FROM {db}.{table} LIMIT 1").column_names
    assert column not in star
    assert column not in warehouse.table_columns(chdb_client, db, table)


@pytest.mark.parametrize(
    ("first", "last", "sessions"),
    [
        ("2024-02-01", "2024-02-29", 2),  # both edges of February in, the 31st and 1 March out
        ("2024-01-31", "2024-01-31", 1),
        ("2024-03-01", "2024-03-31", 1),
        ("2024-01-01", "2024-01-30", 0),
    ],
)
def test_report_ranges_end_exactly_at_the_utc_day(
    chdb_client: Client, db: str, first: str, last: str, sessions: int
) -> None:
    site = chdb_client.query(f"SELECT any(site) FROM {db}.sessions").result_rows[0][0]
    query = ReportQuery.parse("overview", {"site": [site], "from": [first], "to": [last]})
    out = run(query, chdb_client, database=db)
    assert out["totals"]["sessions"] == sessions
    assert sum(r["pageviews"] for r in out["top_pages"]) == sessions


def test_site_time_zone_still_converts_the_timestamp(db: str) -> None:
    """In a site's own time zone the UTC day is the wrong one: the timestamp is converted."""
    query = dataclasses.replace(
        ReportQuery.parse(
            "overview", {"site": ["s"], "from": ["2024-02-01"], "to": ["2024-02-29"]}
        ),
        time_zone="Europe/Paris",
    )
    text = "\n".join(st.sql for st in sql.build(query, db))
    assert "toDate(start_ts, {tz:String})" in text and "toDate(ts, {tz:String})" in text
    assert "indexHint" not in text


def test_the_primary_key_still_skips_granules_out_of_range(chdb_client: Client, db: str) -> None:
    query = ReportQuery.parse(
        "overview", {"site": ["s"], "from": ["2024-02-01"], "to": ["2024-02-29"]}
    )
    where = sql.common.where(query, db, "ts")
    assert where.startswith("site = {site:String} AND indexHint(toDate(ts) BETWEEN")
    assert "AND day BETWEEN {d_from:Date} AND {d_to:Date}" in where
    plan = "\n".join(
        r[0]
        for r in chdb_client.query(
            f"EXPLAIN indexes = 1 SELECT count() FROM {db}.hits WHERE {where}",
            parameters={"site": "s", "d_from": "2024-02-01", "d_to": "2024-02-29"},
        ).result_rows
    )
    assert "PrimaryKey" in plan and "toDate(ts)" in plan, plan
