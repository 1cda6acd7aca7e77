"""Erase, export and retention on real chDB, with the real sessionizer fold and writer."""

from __future__ import annotations

import time

import orjson
import pytest

from clickstream import erase, identity, retention, warehouse
from clickstream.identity import IdentityError
from clickstream.settings import SettingsError, load
from sessionizer.writer import Writer
from tests.privacy.helpers import MIN, T0, hit, sessionize, write

TABLES = ("hits", "sessions", "identities")


def counts(ch, db: str, where: str, final: bool = False) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Rows per table matching ``where``: stored (every version, tombstones too), or FINAL."""
    f = " FINAL" if final else ""
    return {
        t: warehouse.read_query(ch, f"SELECT count() FROM {db}.{t}{f} WHERE {where}").rows[0][0]
        for t in TABLES
    }


def two_customers(ch, db: str) -> list:  # type: ignore[no-untyped-def]
    hits = [
        hit("shop", "phone0001", 0),
        hit("shop", "phone0001", 1, "/p/1", crm="c1"),  # 1 session, 2 hits
        hit("shop", "laptop001", 60),
        hit("shop", "laptop001", 61),  # linked below: 1 session, 2 hits
        hit("shop", "tablet001", 30, crm="c2"),  # merged into c1 below
        hit("shop", "keep00001", 5),
        hit("shop", "keep00001", 6, crm="c3"),
        hit("shop", "keep00001", 90),
        hit("blog", "phone0001", 0, crm="c1"),  # same ids on another site: not touched
    ]
    write(ch, db, hits)
    identity.link(ch, db, "shop", "laptop001", "c1", "t")
    identity.merge(ch, db, "shop", "c2", "c1", "t")
    return hits


def test_erase_a_crm_id_removes_every_row_of_all_its_devices(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    two_customers(ch, database)
    person = "site = 'shop' AND visitor_id IN ('phone0001', 'laptop001', 'tablet001')"
    # 4 stored session rows: the link rewrote the laptop's session as returning (after the
    # phone's); 3 live ones
    assert counts(ch, database, person) == {"hits": 5, "sessions": 4, "identities": 3}
    result = erase.erase(ch, database, "shop", crm_id="c1", actor="cli:dpo")
    assert result == {
        "visitors": 3,
        "crm_ids": 2,
        "deleted": {
            "crm_merges": 1,
            "hits": 5,
            "identities": 3,
            "identity_audit": 2,
            "sessions": 3,
        },
    }
    assert counts(ch, database, person) == {"hits": 0, "sessions": 0, "identities": 0}
    leftover = warehouse.read_query(
        ch,
        f"SELECT count() FROM {database}.identity_audit WHERE action != 'erase' "
        "AND (position(before || after, 'c1') > 0 OR crm_id = 'c1')",
    ).rows
    assert leftover == [[0]]
    assert warehouse.read_query(ch, f"SELECT count() FROM {database}.crm_merges").rows == [[0]]
    # the others are untouched
    assert counts(ch, database, "visitor_id = 'keep00001'") == {
        "hits": 3,
        "sessions": 2,
        "identities": 1,
    }
    assert counts(ch, database, "site = 'blog'") == {"hits": 1, "sessions": 1, "identities": 1}
    # the erasure is audited without the ids
    row = warehouse.read_query(
        ch,
        f"SELECT actor, visitor_id, crm_id, after FROM {database}.identity_audit "
        "WHERE action = 'erase'",
    ).rows
    assert row[0][:3] == ["cli:dpo", "", ""]
    after = orjson.loads(row[0][3])
    assert after["deleted"]["hits"] == 5 and len(after["id_hashes"]) == 5
    assert '"c1"' not in row[0][3] and "phone0001" not in row[0][3]


def test_a_replay_does_not_bring_an_erased_visitor_back(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    hits = two_customers(ch, database)
    erase.erase(ch, database, "shop", visitor_id="phone0001", actor="t")
    assert counts(ch, database, "site = 'shop' AND visitor_id = 'phone0001'") == {
        "hits": 0,
        "sessions": 0,
        "identities": 0,
    }
    # the same hits come again from Kafka (consumer group reset, spool replay): nothing returns
    Writer(ch, database).write(sessionize(hits))
    assert counts(ch, database, "site = 'shop' AND visitor_id = 'phone0001'") == {
        "hits": 0,
        "sessions": 0,
        "identities": 0,
    }
    assert counts(ch, database, "visitor_id = 'keep00001'", final=True) == {
        "hits": 3,
        "sessions": 2,
        "identities": 1,
    }
    assert counts(ch, database, "site = 'blog'", final=True) == {
        "hits": 1,
        "sessions": 1,
        "identities": 1,
    }
    assert counts(ch, database, "visitor_id = 'keep00001'") == {
        "hits": 6,
        "sessions": 4,
        "identities": 2,
    }  # rewritten
    # a later visit with the same cookie is tracked again, as a new visitor
    late = erase.erased_set(ch, database).erased_at("shop", "visitor", "phone0001")
    assert late is not None
    write(ch, database, [hit("shop", "phone0001", 0, received=late + 1000)])
    assert counts(ch, database, "site = 'shop' AND visitor_id = 'phone0001'")["hits"] == 1
    # ... without the CRM id the sessionizer still remembers for it (only a new uid hit re-links)
    remembered = sessionize(
        [hit("shop", "phone0001", 600, received=late + 2000)], {("shop", "phone0001"): (1, "c1")}
    )
    assert remembered[0].session["crm_id"] == "c1"
    Writer(ch, database).write(remembered)
    rows = warehouse.read_query(
        ch,
        f"SELECT crm_id FROM {database}.sessions FINAL WHERE site = 'shop' AND visitor_id = 'phone0001' "
        f"UNION ALL SELECT crm_id FROM {database}.hits FINAL WHERE site = 'shop' AND visitor_id = 'phone0001'",
    ).rows
    assert rows == [[""]] * 4
    relinked = sessionize(
        [hit("shop", "phone0001", 900, crm="c1", received=late + 3000)],
        {("shop", "phone0001"): (2, "")},
    )
    Writer(ch, database).write(relinked)
    assert counts(
        ch, database, "site = 'shop' AND visitor_id = 'phone0001' AND crm_id = 'c1'", final=True
    ) == {"hits": 1, "sessions": 1, "identities": 1}


def test_erased_set_is_shared_hashed_and_read_back_by_a_new_process_cache(
    ch, database: str
) -> None:  # type: ignore[no-untyped-def]
    write(ch, database, [hit("shop", "gone00001", 0, crm="cx")])
    erase.erase(ch, database, "shop", crm_id="cx", actor="t")
    stored = warehouse.read_query(
        ch, f"SELECT id_hash, kind FROM {database}.erased ORDER BY kind"
    ).rows
    assert stored == [
        [erase.id_hash("shop", "crm", "cx"), "crm"],
        [erase.id_hash("shop", "visitor", "gone00001"), "visitor"],
    ]
    fresh = erase.ErasedSet(ch, database)  # as another process would see it
    assert fresh.is_erased("shop", "gone00001") and not fresh.is_erased("blog", "gone00001")
    assert not fresh.is_erased("shop", "gone00001", received_ms=2**52)
    assert fresh.erased_at("shop", "crm", "cx") is not None


def test_export_writes_every_row_of_the_person(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    two_customers(ch, database)
    doc = erase.export(ch, database, "shop", crm_id="c1")
    assert doc["visitor_ids"] == ["laptop001", "phone0001", "tablet001"] and doc["crm_ids"] == [
        "c1",
        "c2",
    ]
    assert {t: len(rows) for t, rows in doc["tables"].items()} == {
        "crm_merges": 1,
        "hits": 5,
        "identities": 3,
        "identity_audit": 2,
        "sessions": 3,
    }
    assert sorted(h["path"] for h in doc["tables"]["hits"]) == ["/", "/", "/", "/", "/p/1"]
    text = orjson.loads(erase.export_json(doc))
    assert text["tables"]["sessions"][0]["site"] == "shop"
    one = erase.export(ch, database, "shop", visitor_id="keep00001")
    assert {t: len(rows) for t, rows in one["tables"].items()} == {
        "hits": 3,
        "identities": 1,
        "identity_audit": 0,
        "sessions": 2,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of"),
        ({"visitor_id": "a1234567", "crm_id": "c1"}, "exactly one of"),
        ({"visitor_id": "with space"}, "visitor_id must be"),
        ({"crm_id": "x" * 200}, "crm_id must be"),
    ],
)
def test_erase_refuses_ambiguous_or_bad_ids(ch, database: str, kwargs: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IdentityError, match=message):
        erase.erase(ch, database, "shop", actor="t", **kwargs)
    with pytest.raises(IdentityError, match="site must be"):
        erase.erase(ch, database, "sh op", visitor_id="a1234567", actor="t")


def test_retention_ttl_is_applied_changed_and_removed(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    s = load(
        flags={"retention_days": "90", "retention_tables": "sessions=400,identity_audit=30"}, env={}
    )
    assert retention.wanted(s) == {"hits": 90, "sessions": 400, "identity_audit": 30}
    assert retention.apply(ch, database, s) == {"hits": 90, "sessions": 400, "identity_audit": 30}
    assert [
        retention.current(ch, database, t)
        for t in ("hits", "sessions", "identities", "identity_audit")
    ] == [90, 400, 0, 30]
    assert retention.apply(ch, database, s) == {}  # already so: no table rewrite
    # the TTL really expires rows: a hit older than 90 days goes at the next merge, a fresh one stays
    now_minutes = (time.time() * 1000 - T0) / MIN
    write(
        ch,
        database,
        [
            hit("shop", "old000001", now_minutes - 91 * 1440),
            hit("shop", "new000001", now_minutes - 5),
        ],
    )
    with warehouse.CHDB_LOCK:
        ch.command(f"OPTIMIZE TABLE {database}.hits FINAL")
    assert warehouse.read_query(ch, f"SELECT visitor_id FROM {database}.hits").rows == [
        ["new000001"]
    ]
    back = load(flags={"retention_tables": "identity_audit=0"}, env={})
    assert retention.apply(ch, database, back) == {"hits": 0, "sessions": 0, "identity_audit": 0}
    assert [retention.current(ch, database, t) for t in ("hits", "sessions", "identity_audit")] == [
        0,
        0,
        0,
    ]


@pytest.mark.parametrize("value", ["hits", "hits=x", "nope=3", "hits=99999"])
def test_bad_retention_tables_name_the_setting(value: str) -> None:
    with pytest.raises(SettingsError, match="retention_tables"):
        retention.wanted(load(flags={"retention_tables": value}, env={}))
