"""Customers follow the identity graph as it is now: merges and moved links (the
``resolved_sessions`` view, as docs/privacy.md says reports read it)."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from reports.query import ReportQuery
from reports.run import run
from tests.reports.report_rows import at, identity, load, session


def test_a_merged_customer_and_a_moved_visitor_count_for_the_customer_they_are_now(
    chdb_client: Client, fresh_db: Any
) -> None:
    db = fresh_db()
    s = session
    load(chdb_client, db, "sessions", [
        # A1 was merged into B1: A1's session is B1's
        s(session_id="a", visitor_id="VA", start="2024-03-01 12:00:00", crm_id="A1", revenue=10.0),
        s(session_id="b", visitor_id="VB", start="2024-03-02 12:00:00", crm_id="B1", revenue=20.0),
        # VC logged in as C1, was later linked to D1 (identify moved it): all D1's
        s(session_id="c1", visitor_id="VC", start="2024-03-03 12:00:00", crm_id="C1", revenue=5.0),
        s(session_id="c2", visitor_id="VC", start="2024-03-04 12:00:00"),
    ])  # fmt: skip
    load(chdb_client, db, "identities", [
        identity("VA", "A1", "2024-03-01 12:00:00"),
        identity("VB", "B1", "2024-03-02 12:00:00"),
        identity("VC", "C1", "2024-03-03 12:00:00"),
        identity("VC", "D1", "2024-03-05 12:00:00"),
    ])  # fmt: skip
    load(chdb_client, db, "crm_merges", [
        {"site": "shop", "from_crm": "A1", "into_crm": "B1", "merged_at": at("2024-03-06 00:00:00"),
         "version": 1, "is_deleted": 0},
    ])  # fmt: skip
    params = {"site": ["shop"], "from": ["2024-03-01"], "to": ["2024-03-10"], "limit": ["100"]}
    out = run(ReportQuery.parse("customers", params), chdb_client, database=db)
    got = {c["crm_id"]: (c["visitors"], c["sessions"], c["revenue"]) for c in out["customers"]}
    assert got == {"B1": (2, 2, 30.0), "D1": (1, 2, 5.0)}
