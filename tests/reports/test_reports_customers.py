"""Customers: identities resolve sessions retroactively and across devices; RFM quintiles."""

from __future__ import annotations

from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from reports.query import ReportQuery
from reports.run import run
from reports.shape import segment
from tests.reports.report_rows import identity, load, session


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    s = session
    load(
        chdb_client,
        name,
        "sessions",
        [
            # alice: phone P and laptop L, anonymous sessions before each device logged in
            s(session_id="P1", visitor_id="P", start="2024-02-01 12:00:00", device_type="mobile"),
            s(session_id="P2", visitor_id="P", start="2024-03-05 12:00:00", device_type="mobile"),
            s(
                session_id="P3",
                visitor_id="P",
                start="2024-03-20 12:00:00",
                device_type="mobile",
                crm_id="alice",
                revenue=50.0,
            ),
            s(session_id="L1", visitor_id="L", start="2024-03-10 12:00:00", revenue=20.0),
            s(
                session_id="L2",
                visitor_id="L",
                start="2024-03-25 12:00:00",
                crm_id="alice",
                revenue=30.0,
            ),
            s(
                session_id="Pbot",
                visitor_id="P",
                start="2024-03-26 12:00:00",
                is_bot=1,
                revenue=999.0,
            ),
            # bob: weekly until mid-January, then gone
            s(session_id="B1", visitor_id="B", start="2024-01-01 12:00:00", crm_id="bob"),
            s(session_id="B2", visitor_id="B", start="2024-01-08 12:00:00", crm_id="bob"),
            s(
                session_id="B3",
                visitor_id="B",
                start="2024-01-15 12:00:00",
                crm_id="bob",
                revenue=10.0,
            ),
            # carol: one big order, known only from the session's crm_id
            s(
                session_id="C1",
                visitor_id="C",
                start="2024-03-30 12:00:00",
                crm_id="carol",
                revenue=500.0,
            ),
            # dave: two days in a row four weeks ago
            s(session_id="D1", visitor_id="D", start="2024-03-02 12:00:00", crm_id="dave"),
            s(
                session_id="D2",
                visitor_id="D",
                start="2024-03-03 12:00:00",
                crm_id="dave",
                revenue=5.0,
            ),
            # erin: E, plus tablet X first linked to frank then to erin (latest link wins)
            s(session_id="E1", visitor_id="E", start="2024-03-15 12:00:00"),
            s(session_id="X1", visitor_id="X", start="2024-03-21 12:00:00", device_type="tablet"),
            s(session_id="E2", visitor_id="E", start="2024-03-28 12:00:00"),
            s(
                session_id="E3",
                visitor_id="E",
                start="2024-03-31 12:00:00",
                crm_id="erin",
                revenue=40.0,
            ),
            # an anonymous visitor and another site's customer
            s(session_id="Z1", visitor_id="Z", start="2024-03-10 12:00:00", revenue=7.0),
            s(
                session_id="O1",
                visitor_id="O",
                site="other",
                start="2024-03-10 12:00:00",
                crm_id="olga",
            ),
        ],
    )
    load(
        chdb_client,
        name,
        "identities",
        [
            identity("P", "alice", "2024-03-20 12:00:00"),
            identity("L", "alice", "2024-03-25 12:00:00"),
            identity("B", "bob", "2024-01-01 12:00:00", "2024-01-15 12:00:00"),
            identity("D", "dave", "2024-03-02 12:00:00", "2024-03-03 12:00:00"),
            identity("E", "erin", "2024-03-31 12:00:00"),
            identity("X", "frank", "2024-03-01 12:00:00"),
            identity("X", "erin", "2024-03-20 12:00:00"),
            # an old version of a link, replaced (ReplacingMergeTree): read with FINAL
            identity("Z", "zed", "2024-03-10 12:00:00", version=1),
            identity("Z", "zed", "2024-03-10 12:00:00", version=2, is_deleted=1),
        ],
    )
    return name


def customers(client: Client, db: str, **extra: str) -> dict[str, Any]:
    params = {"site": ["shop"], "from": ["2024-03-01"], "to": ["2024-03-31"]}
    params.update({k: [v] for k, v in extra.items()})
    return run(ReportQuery.parse("customers", params), client, database=db)


def c(
    crm_id: str,
    visitors: int,
    devices: int,
    sessions: int,
    revenue: float,
    recency: int,
    r: int,
    f: int,
    m: int,
    seg: str,
    total: int,
    cadence: float | None,
    at_risk: bool,
) -> dict[str, Any]:
    return {
        "crm_id": crm_id,
        "visitors": visitors,
        "devices": devices,
        "sessions": sessions,
        "revenue": revenue,
        "recency_days": recency,
        "r": r,
        "f": f,
        "m": m,
        "segment": seg,
        "sessions_total": total,
        "cadence_days": cadence,
        "at_risk": at_risk,
    }


ERIN = c("erin", 2, 2, 4, 40.0, 0, 5, 4, 3, "champions", 4, 5.3333, False)
CAROL = c("carol", 1, 1, 1, 500.0, 1, 4, 2, 5, "promising", 1, None, False)
ALICE = c("alice", 2, 2, 4, 100.0, 6, 3, 4, 4, "loyal", 5, 13.25, False)
DAVE = c("dave", 1, 1, 2, 5.0, 28, 2, 3, 2, "at risk", 2, 1.0, True)
BOB = c("bob", 1, 1, 0, 0.0, 76, 1, 1, 1, "lost", 3, 7.0, True)


def test_customers_rfm_over_linked_devices(chdb_client: Client, db: str) -> None:
    out = customers(chdb_client, db)
    assert out["customers"] == [ERIN, CAROL, ALICE, DAVE, BOB]
    assert out["at_risk"] == [DAVE, BOB]  # 28 days vs a 1-day cadence; 76 vs 7


def test_customers_limit_keeps_at_risk_list(chdb_client: Client, db: str) -> None:
    out = customers(chdb_client, db, limit="2")
    assert out["customers"] == [ERIN, CAROL]
    assert out["at_risk"] == [DAVE, BOB]


def test_customer_timeline_includes_sessions_before_linking(chdb_client: Client, db: str) -> None:
    out = customers(chdb_client, db, crm_id="alice")
    assert out["customers"] == [ALICE]
    assert [
        (t["session_id"], t["visitor_id"], t["device_type"], t["revenue"], t["identified"])
        for t in out["timeline"]
    ] == [
        ("P2", "P", "mobile", 0.0, 0),
        ("L1", "L", "desktop", 20.0, 0),
        ("P3", "P", "mobile", 50.0, 1),
        ("L2", "L", "desktop", 30.0, 1),
    ]
    assert out["timeline"][0]["start_ts"] == "2024-03-05T12:00:00Z"
    nobody = customers(chdb_client, db, crm_id="nobody")
    assert (nobody["customers"], nobody["at_risk"], nobody["timeline"]) == ([], [], [])


def test_rfm_segments() -> None:
    assert segment(5, 5, 5) == "champions"
    assert segment(3, 4, 1) == "loyal"
    assert segment(5, 1, 1) == "new"
    assert segment(4, 2, 5) == "promising"
    assert segment(3, 2, 2) == "needs attention"
    assert segment(2, 3, 2) == "at risk"
    assert segment(1, 1, 4) == "at risk"
    assert segment(2, 2, 2) == "hibernating"
    assert segment(1, 2, 3) == "lost"
