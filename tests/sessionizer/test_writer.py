"""Writer against real chDB: columns match the DDL, FINAL semantics, identity first_ts."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from sessionizer.flags import build_session
from sessionizer.sessions import Tombstone
from sessionizer.split import Rules
from sessionizer.writer import Writer
from tests.sessionizer.factory import T0, hit


def q(client: Client, sql: str) -> list[list[object]]:
    return warehouse.read_query(client, sql).rows


def test_rewrite_wins_and_tombstone_deletes_under_final(client: Client, db: str) -> None:
    w = Writer(client, db)
    a, b = hit(0, "/a", vid="w1"), hit(10, "/b", vid="w1")
    w.write([build_session("s1", [a], Rules(), closed=False, number=1)])
    w.write([build_session("s1", [a, b], Rules(), closed=True, number=1)])
    assert q(client, f"SELECT session_id, hits, is_closed FROM {db}.sessions FINAL") == [
        ["s1", 2, 1]
    ]
    w.write([], [Tombstone("s1", "w1", "s1", a.hit.ts)])
    assert q(client, f"SELECT count() FROM {db}.sessions FINAL") == [[0]]
    assert q(client, f"SELECT count() FROM {db}.hits FINAL") == [[2]]


def test_identity_first_ts_stays_the_earliest(client: Client, db: str) -> None:
    w = Writer(client, db)
    first = hit(0, "/login", vid="w2", uid="C1")
    later = hit(86400, "/login", vid="w2", uid="C1")
    w.write([build_session("x1", [first], Rules(), closed=True, number=1)])
    w.write([build_session("x2", [later], Rules(), closed=True, number=2)])
    rows = q(
        client,
        f"SELECT crm_id, toUnixTimestamp64Milli(first_ts), toUnixTimestamp64Milli(last_ts) "
        f"FROM {db}.identities FINAL",
    )
    assert rows == [["C1", T0, T0 + 86400_000]]
