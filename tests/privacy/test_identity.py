"""Identity graph on real chDB: links, several devices, anonymous sessions before login,
merge and undo with the audit trail, and the resolved_sessions view."""

from __future__ import annotations

import orjson
import pytest

from clickstream import identity, warehouse
from clickstream.identity import IdentityError
from tests.privacy.helpers import hit, write


def sessions_of(ch, db: str, crm: str) -> list[list[object]]:  # type: ignore[no-untyped-def]
    return warehouse.read_query(
        ch,
        f"SELECT visitor_id, session_crm_id, pageviews FROM {db}.resolved_sessions "
        "WHERE site = 'shop' AND crm_id = %(c)s ORDER BY start_ts",
        {"c": crm},
    ).rows


def customer_with_two_devices(ch, db: str) -> None:  # type: ignore[no-untyped-def]
    """Phone: two anonymous sessions, then a login (uid) in the third. Laptop: one
    anonymous session, linked server-to-server. Another customer c2 on a tablet."""
    write(
        ch,
        db,
        [
            hit("shop", "phone0001", 0),
            hit("shop", "phone0001", 1, "/p/1"),  # session 1, anonymous
            hit("shop", "phone0001", 120),  # session 2, anonymous
            hit("shop", "phone0001", 240),
            hit("shop", "phone0001", 241, "/account", crm="c1"),  # login
            hit("shop", "laptop001", 60),
            hit("shop", "laptop001", 62, "/cart"),
            hit("shop", "laptop001", 63, "/pay"),
            hit("shop", "tablet001", 30, crm="c2"),
            hit("shop", "stranger1", 10),
        ],
    )
    identity.link(ch, db, "shop", "laptop001", "c1", "test")


def test_customer_sees_sessions_of_every_device_including_before_login(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    customer_with_two_devices(ch, database)
    assert sessions_of(ch, database, "c1") == [
        ["phone0001", "", 2],
        ["laptop001", "", 3],
        ["phone0001", "", 1],
        ["phone0001", "c1", 2],
    ]
    assert sessions_of(ch, database, "c2") == [["tablet001", "c2", 1]]
    assert identity.visitors_of(ch, database, "shop", "c1") == ["laptop001", "phone0001"]
    rows = warehouse.read_query(
        ch, f"SELECT count() FROM {database}.resolved_sessions WHERE crm_id = ''"
    ).rows
    assert rows == [[1]]  # the stranger stays anonymous
    # the helper SQL for reports gives the same four sessions
    r = warehouse.read_query(
        ch, identity.crm_sessions_sql(database), {"site": "shop", "crm_id": "c1"}
    )
    assert len(r.rows) == 4 and "session_crm_id" in r.columns and "crm_id" in r.columns


def test_a_link_makes_the_customers_later_sessions_on_every_device_returning(
    ch, database: str
) -> None:  # type: ignore[no-untyped-def]
    """identity.link (the API, or the CLI straight on the warehouse, no sessionizer): the
    laptop's anonymous session came after the phone's first one, so it is returning now;
    session numbers stay per visitor id; a link again changes nothing."""
    customer_with_two_devices(ch, database)
    sql = (
        f"SELECT visitor_id, session_number, is_returning FROM {database}.sessions FINAL "
        "ORDER BY start_ts"
    )
    expected = [
        ["phone0001", 1, 0],
        ["stranger1", 1, 0],
        ["tablet001", 1, 0],
        ["laptop001", 1, 1],
        ["phone0001", 2, 1],
        ["phone0001", 3, 1],
    ]
    assert warehouse.read_query(ch, sql).rows == expected
    versions = f"SELECT count() FROM {database}.sessions"
    before = warehouse.read_query(ch, versions).rows
    identity.link(ch, database, "shop", "laptop001", "c1", "test")
    assert warehouse.read_query(ch, sql).rows == expected
    assert warehouse.read_query(ch, versions).rows == before  # nothing left to rewrite


def test_merge_then_undo_restores_the_prior_state_and_audits_both(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    customer_with_two_devices(ch, database)
    before = (sessions_of(ch, database, "c1"), sessions_of(ch, database, "c2"))
    change = identity.merge(ch, database, "shop", "c2", "c1", "cli:alice")
    assert change.before == {"merges": [["c2", ""]]} and change.after == {"merges": [["c2", "c1"]]}
    assert len(sessions_of(ch, database, "c1")) == 5 and sessions_of(ch, database, "c2") == []
    assert identity.visitors_of(ch, database, "shop", "c1") == [
        "laptop001",
        "phone0001",
        "tablet001",
    ]

    undone = identity.undo(ch, database, "shop", change.change_id, "api:admin:0123abcd")
    assert undone.before == {"merges": [["c2", "c1"]]} and undone.after == {"merges": [["c2", ""]]}
    assert (sessions_of(ch, database, "c1"), sessions_of(ch, database, "c2")) == before

    audit = identity.audit(ch, database, "shop", crm_id="c2")
    assert [
        (a["action"], a["actor"], a["crm_id"], a["other_crm_id"], a["ref_change_id"]) for a in audit
    ] == [
        ("merge", "cli:alice", "c2", "c1", ""),
    ]
    undo_rows = warehouse.read_query(
        ch,
        f"SELECT actor, ref_change_id, before, after FROM {database}.identity_audit WHERE action = 'undo'",
    ).rows
    assert undo_rows == [
        [
            "api:admin:0123abcd",
            change.change_id,
            orjson.dumps({"merges": [["c2", "c1"]]}).decode(),
            orjson.dumps({"merges": [["c2", ""]]}).decode(),
        ]
    ]
    with pytest.raises(IdentityError, match="already undone"):
        identity.undo(ch, database, "shop", change.change_id, "test")


def test_merge_chains_are_flattened_and_loops_refused(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    identity.merge(ch, database, "shop", "a", "b", "t")
    identity.merge(ch, database, "shop", "b", "c", "t")  # a followed b: now a -> c as well
    assert identity.merges_touching(ch, database, "shop", ["a", "b", "c"]) == {"a": "c", "b": "c"}
    assert identity.resolve(ch, database, "shop", "a") == "c"
    with pytest.raises(IdentityError, match="loop"):
        identity.merge(ch, database, "shop", "c", "a", "t")
    with pytest.raises(IdentityError, match="already merged"):
        identity.merge(ch, database, "shop", "a", "d", "t")
    with pytest.raises(IdentityError, match="into itself"):
        identity.merge(ch, database, "shop", "d", "d", "t")


def test_undo_refuses_when_a_later_change_touched_the_rows(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    first = identity.merge(ch, database, "shop", "a", "b", "t")
    second = identity.merge(ch, database, "shop", "b", "c", "t")  # rewrites a -> c
    with pytest.raises(IdentityError, match="changed since"):
        identity.undo(ch, database, "shop", first.change_id, "t")
    identity.undo(ch, database, "shop", second.change_id, "t")
    assert identity.merges_touching(ch, database, "shop", ["a", "b"]) == {"a": "b"}
    identity.undo(ch, database, "shop", first.change_id, "t")
    assert identity.merges_touching(ch, database, "shop", ["a", "b", "c"]) == {}


def test_link_moves_a_visitor_and_undo_moves_it_back(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    write(ch, database, [hit("shop", "shared01", 0, crm="c1")])
    change = identity.link(ch, database, "shop", "shared01", "c9", "t")
    assert identity.visitors_of(ch, database, "shop", "c9") == ["shared01"]
    assert identity.visitors_of(ch, database, "shop", "c1") == []
    identity.undo(ch, database, "shop", change.change_id, "t")
    assert identity.visitors_of(ch, database, "shop", "c1") == ["shared01"]
    assert identity.visitors_of(ch, database, "shop", "c9") == []
    links = warehouse.read_query(
        ch, f"SELECT visitor_id, crm_id FROM {database}.identities FINAL"
    ).rows
    assert links == [["shared01", "c1"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("shop", "", "c1"), "visitor_id must be 1-128 printable"),
        (("shop", "v" * 129, "c1"), "visitor_id must be 1-128 printable"),
        (("shop", "v1", "tab\tinside"), "crm_id must be 1-128 characters, without control"),
        (("shop", "v1", " padded"), "crm_id must be 1-128 characters"),
        (("shop", "v1", "c" * 129), "crm_id must be 1-128 characters"),
        (("shop", "v1", 42), "crm_id must be 1-128 characters"),
        (("<script>", "v1", "c1"), "site must be"),
        ((None, "v1", "c1"), "site must be"),
    ],
)
def test_bad_identify_input_is_refused_with_a_clear_message(
    ch, database: str, args: tuple, message: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IdentityError, match=message):
        identity.link(ch, database, *args, "t")
    assert warehouse.read_query(ch, f"SELECT count() FROM {database}.identities").rows == [[0]]


def test_undo_of_unknown_or_malformed_change(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IdentityError, match="32 hex digits"):
        identity.undo(ch, database, "shop", "'; DROP TABLE x", "t")
    with pytest.raises(IdentityError, match="no change"):
        identity.undo(ch, database, "shop", "0" * 32, "t")


def test_a_crm_id_with_a_space_that_a_hit_carried_can_be_linked_merged_and_erased(
    ch, database: str
) -> None:  # type: ignore[no-untyped-def]
    """The collector keeps a uid such as 'ACME 42' (inner spaces): identify, merge and erase
    must accept what the tables hold, or that customer could never be erased by CRM id."""
    from clickstream import erase

    write(ch, database, [hit("shop", "phone0001", 0, crm="ACME 42"), hit("shop", "laptop001", 5)])
    identity.link(ch, database, "shop", "laptop001", "ACME 42", "t")
    identity.merge(ch, database, "shop", "ACME 7", "ACME 42", "t")
    assert identity.visitors_of(ch, database, "shop", "ACME 42") == ["laptop001", "phone0001"]
    done = erase.erase(ch, database, "shop", crm_id="ACME 42")
    assert (
        done["visitors"],
        done["crm_ids"],
        done["deleted"]["hits"],
        done["deleted"]["sessions"],
    ) == (2, 2, 2, 2)
    for table in ("hits", "sessions", "identities", "crm_merges"):
        assert warehouse.read_query(ch, f"SELECT count() FROM {database}.{table}").rows == [[0]], (
            table
        )


def test_a_link_by_the_api_wins_over_the_one_the_sessionizer_wrote(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    """The visitor logged in as c1 (the sessionizer writes that link), was linked to c2,
    then back to c1: it resolves to c1, as the answer of the last link says.  (The API's
    rows carried a version in milliseconds and lost under FINAL to the sessionizer's, in
    microseconds: the visitor stayed c2.)"""

    def resolved() -> list[list[object]]:
        return warehouse.read_query(
            ch,
            f"SELECT crm_id FROM {database}.resolved_identities WHERE visitor_id = 'switch001'",
        ).rows

    write(ch, database, [hit("shop", "switch001", 0, "/login", crm="c1")])
    identity.link(ch, database, "shop", "switch001", "c2", "test")
    change = identity.link(ch, database, "shop", "switch001", "c1", "test")
    assert resolved() == [["c1"]]
    identity.undo(ch, database, "shop", change.change_id, "test")
    assert resolved() == [["c2"]]
