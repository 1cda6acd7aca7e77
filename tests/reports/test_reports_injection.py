"""Hostile values in every parameter are rejected or harmless; queries are read-only and tagged."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from reports import sql
from reports.query import PER_REPORT, REPORT_NAMES, QueryError, ReportQuery
from reports.run import run
from tests.reports.report_rows import hit, identity, load, session

PAYLOADS = [
    "x' OR '1'='1",
    "shop'; DROP TABLE hits; --",
    "shop') UNION ALL SELECT 1 --",
    "\\' OR 1=1 --",
    "{site:String}",
    "$site$",
    "shop\u2019 OR 1=1",
    "%",
    "*",
    "/*",
    "event:x' OR 1=1",
    "1; SELECT 1",
    "../../etc/passwd",
]
STRING_PARAMS = (
    "site",
    "channel",
    "device",
    "country",
    "crm",
    "from",
    "to",
    "limit",
    "format",
    "table",
    "step",
    "window",
    "by",
    "mode",
    "breakdown",
    "depth",
    "page",
    "weeks",
    "crm_id",
    "interval",
)
BASE = {"site": ["shop"], "from": ["2024-01-10"], "to": ["2024-01-10"]}


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    load(chdb_client, name, "hits", [hit(visitor_id="v1", ts="2024-01-10 10:00:00", path="/")])
    load(
        chdb_client,
        name,
        "sessions",
        [session(visitor_id="v1", start="2024-01-10 10:00:00", crm_id="c1")],
    )
    load(chdb_client, name, "identities", [identity("v1", "c1", "2024-01-10 10:00:00")])
    return name


def _counts(client: Client, db: str) -> list[int]:
    return [
        client.query(f"SELECT count() FROM {db}.{t} FINAL").result_rows[0][0]
        for t in ("hits", "sessions", "identities")
    ]


def cases() -> list[tuple[str, str, str]]:
    out = []
    for name in REPORT_NAMES:
        accepted = (
            "site",
            "channel",
            "device",
            "country",
            "crm",
            "from",
            "to",
            "limit",
            "format",
            "table",
            *PER_REPORT[name],
        )
        for param in STRING_PARAMS:
            if param in accepted:
                out.extend((name, param, p) for p in PAYLOADS)
    return out


def _params(name: str, param: str, payload: str) -> dict[str, list[str]]:
    params = {**BASE}
    if name == "funnel":
        params["step"] = ["/"]
    params[param] = [payload]
    return params


@pytest.mark.parametrize(("name", "param", "payload"), cases())
def test_hostile_value_rejected_or_harmless(
    chdb_client: Client, db: str, name: str, param: str, payload: str
) -> None:
    try:
        q = ReportQuery.parse(name, _params(name, param, payload))
    except QueryError as exc:
        assert str(exc)  # a message, never a crash
        return
    # accepted: the value never appears in SQL text, only as a bound parameter
    for st in sql.build(q, db):
        if len(payload) > 2 and payload != "{site:String}":  # our own placeholder
            assert payload not in st.sql
    result = run(q, chdb_client, database=db)
    assert result["query"]["report"] == name
    assert _counts(chdb_client, db) == [1, 1, 1]
    if param == "site":  # an unknown site sees nothing
        assert result["query"]["site"] == payload


def test_hostile_site_sees_no_rows(chdb_client: Client, db: str) -> None:
    out = run(
        ReportQuery.parse("overview", {**BASE, "site": ["x' OR '1'='1"]}), chdb_client, database=db
    )
    assert out["totals"]["sessions"] == 0
    out = run(ReportQuery.parse("overview", BASE), chdb_client, database=db)
    assert out["totals"]["sessions"] == 1


class Recorder:
    """The real client, noting the settings each query ran with."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[dict[str, Any]] = []

    def query(self, sql_text: str, parameters: Any = None, settings: Any = None) -> Any:
        self.calls.append(dict(settings or {}))
        return self.client.query(sql_text, parameters=parameters, settings=settings)


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_every_query_is_readonly_and_names_the_report(
    chdb_client: Client, db: str, name: str
) -> None:
    params = _params(name, "site", "shop")
    rec = Recorder(chdb_client)
    run(ReportQuery.parse(name, params), rec, database=db)  # type: ignore[arg-type]
    assert rec.calls
    for settings in rec.calls:
        assert settings["readonly"] == 1
        assert settings["log_comment"].startswith(f"clickstream report {name} ")


def test_report_queries_run_readonly(chdb_client: Client, db: str) -> None:
    # (a write statement through read_query is refused too, but on chDB it leaves the shared
    # engine's session read-only for every later test: checked by the setting instead)
    res = warehouse.read_query(chdb_client, "SELECT getSetting('readonly')", comment="test")
    assert res.rows == [[1]]
    assert _counts(chdb_client, db) == [1, 1, 1]
