"""The I/O shell's ClickHouse side with real chDB: history on first sight, restarts,
late hits amending written sessions, CRM links — each "process" a fresh Sessionizer
(new History cache, new State) over the same tables."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from clickhouse_connect.driver.client import Client

from clickstream import settings as settings_mod
from clickstream import warehouse
from clickstream.hit import Hit
from clickstream.settings import SettingsError
from sessionizer.loop import Sessionizer
from tests.sessionizer.factory import T0

_offsets = itertools.count(0)
TP = TopicPartition("clickstream.hits", 0)


def h(t: float, path: str, vid: str = "vis00001", uid: str = "", hid: str = "") -> Hit:
    return Hit(
        site="s1",
        visitor_id=vid,
        hit_id=hid or f"{vid}-{t}",
        ts=T0 + int(t * 1000),
        received=T0 + int(t * 1000),
        url="https://ex.com" + path,
        crm_id=uid,
    )


def records(*hits: Hit) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    return {
        TP: [
            ConsumerRecord(TP.topic, 0, next(_offsets), 0, 0, None, x.to_json(), None, 0, 0, [])
            for x in hits
        ]
    }


def process(client: Client, db: str) -> Sessionizer:
    return Sessionizer(settings_mod.load(flags={"database": db}, env={}), client)


async def feed(sz: Sessionizer, *hits: Hit, close: bool = False) -> None:
    sz.ingest(records(*hits))
    await sz.write_and_commit(close_everything=close)


def sessions(client: Client, db: str) -> list[list[object]]:
    return warehouse.read_query(
        client,
        f"SELECT visitor_id, session_number, is_returning, hits, paths, crm_id, is_closed "
        f"FROM {db}.sessions FINAL ORDER BY visitor_id, start_ts",
    ).rows


async def test_returning_visitor_seen_by_a_fresh_process(client: Client, db: str) -> None:
    await feed(process(client, db), h(0, "/a"), h(60, "/b"), close=True)
    fresh = process(client, db)
    await feed(
        fresh,
        h(3 * 3600, "/c"),
        h(3 * 3600, "/x", vid="vis00002"),
        h(3 * 3600, "/y", vid="vis00003"),
        close=True,
    )
    assert fresh.history.lookups == 1  # one batched lookup for the three new visitors
    assert sessions(client, db) == [
        ["vis00001", 1, 0, 2, ["/a", "/b"], "", 1],
        ["vis00001", 2, 1, 1, ["/c"], "", 1],
        ["vis00002", 1, 0, 1, ["/x"], "", 1],
        ["vis00003", 1, 0, 1, ["/y"], "", 1],
    ]


async def test_restart_replays_open_session_without_counting_it_twice(
    client: Client, db: str
) -> None:
    await feed(process(client, db), h(0, "/old"), close=True)
    first = process(client, db)
    await feed(first, h(7200, "/a"), h(7260, "/b"))  # written provisionally, then "killed"
    assert sessions(client, db)[1] == ["vis00001", 2, 1, 2, ["/a", "/b"], "", 0]
    again = process(client, db)  # replays from the committed offset: the open session's first hit
    await feed(again, h(7200, "/a"), h(7260, "/b"), h(7300, "/c"), close=True)
    assert sessions(client, db) == [
        ["vis00001", 1, 0, 1, ["/old"], "", 1],
        ["vis00001", 2, 1, 3, ["/a", "/b", "/c"], "", 1],
    ]


async def test_late_hit_amends_written_session_and_tombstones_the_old_id(
    client: Client, db: str
) -> None:
    await feed(process(client, db), h(100, "/a"), h(200, "/b"), h(9000, "/next"), close=True)
    old_ids = warehouse.read_query(
        client, f"SELECT session_id FROM {db}.sessions FINAL ORDER BY start_ts"
    ).rows
    late = process(client, db)
    await feed(late, h(50, "/late"), close=True)  # older than the first hit
    assert sessions(client, db) == [
        ["vis00001", 1, 0, 3, ["/late", "/a", "/b"], "", 1],
        ["vis00001", 2, 1, 1, ["/next"], "", 1],
    ]
    ids = warehouse.read_query(
        client, f"SELECT session_id FROM {db}.sessions FINAL ORDER BY start_ts"
    ).rows
    assert ids[0] != old_ids[0] and ids[1] == old_ids[1]
    by_session = warehouse.read_query(
        client,
        f"SELECT session_id, groupArray(seq) FROM (SELECT session_id, seq FROM {db}.hits FINAL "
        f"ORDER BY ts) GROUP BY session_id ORDER BY session_id = '{ids[0][0]}' DESC",
    ).rows
    assert by_session == [[ids[0][0], [1, 2, 3]], [ids[1][0], [1]]]


async def test_late_hit_bridging_two_sessions_merges_them(client: Client, db: str) -> None:
    await feed(process(client, db), h(0, "/a"), h(50 * 60, "/b"), close=True)
    assert len(sessions(client, db)) == 2
    await feed(process(client, db), h(25 * 60, "/bridge"), close=True)
    assert sessions(client, db) == [["vis00001", 1, 0, 3, ["/a", "/bridge", "/b"], "", 1]]


async def test_crm_link_reaches_later_sessions_in_a_fresh_process(client: Client, db: str) -> None:
    await feed(process(client, db), h(0, "/a"), h(10, "/login", uid="C7"), close=True)
    await feed(process(client, db), h(7200, "/again"), close=True)
    assert sessions(client, db) == [
        ["vis00001", 1, 0, 2, ["/a", "/login"], "C7", 1],
        ["vis00001", 2, 1, 1, ["/again"], "C7", 1],
    ]
    hits = warehouse.read_query(
        client, f"SELECT path, crm_id, uid FROM {db}.hits FINAL ORDER BY ts"
    ).rows
    assert hits == [["/a", "", ""], ["/login", "C7", "C7"], ["/again", "C7", ""]]


async def test_a_new_device_of_a_known_customer_is_returning(client: Client, db: str) -> None:
    # the laptop: two sessions, the second with the login
    await feed(process(client, db), h(0, "/a"), h(7200, "/login", uid="C7"), close=True)
    # the phone, in a fresh process: its first session logs in as C7 (on its second hit,
    # while the session is open), so it is returning; session_number stays per visitor
    sz = process(client, db)
    await feed(sz, h(86400, "/m", vid="phone001"))
    await feed(sz, h(86410, "/login", vid="phone001", uid="C7"), close=True)
    # a third device logging in as a customer nobody saw before is new
    await feed(process(client, db), h(90000, "/x", vid="tablet01", uid="C8"), close=True)
    rows = [r[:3] + r[5:6] for r in sessions(client, db)]
    assert rows == [
        ["phone001", 1, 1, "C7"],
        ["tablet01", 1, 0, "C8"],
        ["vis00001", 1, 0, ""],
        ["vis00001", 2, 1, "C7"],
    ]
    assert sz.customer_cache == set()  # closed sessions leave the cache


async def test_two_devices_of_one_customer_in_one_write(client: Client, db: str) -> None:
    await feed(
        process(client, db), h(0, "/a", uid="C9"), h(60, "/b", vid="phone002", uid="C9"), close=True
    )
    rows = [r[:3] for r in sessions(client, db)]
    assert rows == [["phone002", 1, 1], ["vis00001", 1, 0]]


async def test_a_link_by_the_api_reaches_the_open_and_later_sessions(
    client: Client, db: str
) -> None:
    from clickstream import identity

    sz = process(client, db)
    await feed(sz, h(0, "/a"), close=True)  # closed and cached before the link
    await feed(sz, h(60, "/x", vid="vis00002"))  # open while linked
    for vid in ("vis00001", "vis00002"):
        identity.link(client, db, "s1", vid, "C5", "test")
        sz.relink("s1", vid, "C5")
    later = (time.time() * 1000 - T0) / 1000 + 3600  # a visit after the link
    await feed(sz, h(later, "/b"), h(120, "/y", vid="vis00002"), close=True)
    assert [r[:2] + r[4:6] for r in sessions(client, db)] == [
        ["vis00001", 1, ["/a"], ""],
        ["vis00001", 2, ["/b"], "C5"],
        ["vis00002", 1, ["/x", "/y"], "C5"],
    ]


async def test_a_link_by_the_api_reaches_the_session_it_was_made_in_when_not_in_memory(
    client: Client, db: str
) -> None:
    """The visitor's hits were still in Kafka when linked (vis00001), or its session was
    closed by a flush and goes on after the link (vis00002): that session carries the
    CRM id, as a hit with uid would have given it; a session ended long before does not."""
    from clickstream import identity

    now = (time.time() * 1000 - T0) / 1000  # h() takes seconds after T0
    sz = process(client, db)
    await feed(sz, h(now - 4 * 3600, "/old", vid="vis00002"), h(now - 5, "/a", vid="vis00002"))
    await feed(sz, close=True)  # POST /api/flush
    for vid in ("vis00001", "vis00002"):
        identity.link(client, db, "s1", vid, "C6", "test")
        sz.relink("s1", vid, "C6")  # vis00001 is not in memory yet, vis00002 no longer
    await feed(sz, h(now - 3, "/home"), h(now + 2, "/account"), close=True)
    await feed(sz, h(now + 2, "/b", vid="vis00002"), close=True)
    assert [r[:2] + r[4:6] for r in sessions(client, db)] == [
        ["vis00001", 1, ["/home", "/account"], "C6"],
        ["vis00002", 1, ["/old"], ""],
        ["vis00002", 2, ["/a", "/b"], "C6"],
    ]


async def test_a_funnel_drop_out_after_an_event_step_names_the_next_page(
    client: Client, db: str
) -> None:
    from dataclasses import replace

    from reports.query import ReportQuery
    from reports.run import run

    cart = replace(h(30, "/p/1", hid="cart-1"), event="add_to_cart")
    await feed(process(client, db), h(0, "/"), h(20, "/p/1"), cart, h(40, "/p/2"), close=True)
    hits = warehouse.read_query(
        client, f"SELECT event, prev_page, next_page FROM {db}.hits FINAL ORDER BY ts"
    ).rows
    assert hits[2] == ["add_to_cart", "/p/1", "/p/2"]
    out = run(
        ReportQuery.parse(
            "funnel",
            {
                "site": ["s1"],
                "from": ["2026-01-05"],
                "to": ["2026-01-05"],
                "step": ["/", "event:add_to_cart", "/checkout"],
            },
        ),
        client,
        db,
    )
    assert [s["count"] for s in out["steps"]] == [1, 1, 0]
    assert out["dropoff_next"] == [
        {"after_step": "event:add_to_cart", "next_page": "/p/2", "count": 1}
    ]


async def test_same_process_counts_right_after_a_merge(client: Client, db: str) -> None:
    sz = process(client, db)
    await feed(sz, h(0, "/a"), h(50 * 60, "/b"), close=True)  # two sessions
    await feed(sz, h(25 * 60, "/bridge"), close=True)  # merged into one
    await feed(sz, h(5 * 3600, "/later"), close=True)  # the visitor's second session
    assert [r[1:5] for r in sessions(client, db)] == [
        [1, 0, 3, ["/a", "/bridge", "/b"]],
        [2, 1, 1, ["/later"]],
    ]


def test_bad_rules_fail_at_start_naming_the_setting(
    client: Client, db: str, tmp_path: Path
) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[site.shop]\ntime_zone = "Europe/Atlantis"\n')
    # both are refused when the settings load, before any role starts (tests/test_settings.py)
    with pytest.raises(
        SettingsError,
        match=r"setting 'time_zone' \(\[site.shop\]\): 'Europe/Atlantis' is not an IANA time zone",
    ):
        Sessionizer(settings_mod.load(flags={"database": db}, env={}, config_file=conf), client)
    with pytest.raises(SettingsError, match="setting 'geoip_db' .*: cannot open"):
        Sessionizer(
            settings_mod.load(
                flags={"database": db, "geoip_db": str(tmp_path / "no.mmdb")}, env={}
            ),
            client,
        )
    # a settings object built without load() (tests, embedders) is still checked by the sessionizer
    with pytest.raises(SettingsError, match="setting 'time_zone': 'Europe/Atlantis'"):
        Sessionizer(
            settings_mod.Settings(
                {**settings_mod.load(flags={"database": db}, env={}).as_dict()},
                {"shop": {"time_zone": "Europe/Atlantis"}},
            ),
            client,
        )


async def test_an_erase_in_another_process_resets_what_memory_holds(
    client: Client, db: str
) -> None:
    """The dashboard (or the CLI on the warehouse) erased a visitor this sessionizer holds in
    memory: it learns it from the erased table and the visitor's next session is number 1."""
    from clickstream import erase

    sz = process(client, db)
    sz.writer.erased.refresh_s = 0  # re-read at every flush, not every 5 s
    await feed(sz, h(0, "/a"), h(7200, "/b"), close=True)  # two sessions, history cached
    await feed(sz, h(7300, "/open", vid="vis00002"))  # open in memory
    assert [r[:2] for r in sessions(client, db)] == [
        ["vis00001", 1],
        ["vis00001", 2],
        ["vis00002", 1],
    ]
    elsewhere = erase.ErasedSet(client, db)  # another process's set: ours must read the table
    for vid in ("vis00001", "vis00002"):
        erase.erase(client, db, "s1", visitor_id=vid, erased=elsewhere)
    later = (time.time() * 1000 - T0) / 1000 + 3600  # received after the erasure
    await feed(sz, h(later, "/back"), h(later + 1, "/again", vid="vis00002"), close=True)
    assert [r[:5] for r in sessions(client, db)] == [
        ["vis00001", 1, 0, 1, ["/back"]],
        ["vis00002", 1, 0, 1, ["/again"]],
    ]
