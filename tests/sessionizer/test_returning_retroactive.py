"""Returning through the customer when the customer's earlier session becomes known LATER
(DESIGN.md: a session is returning when the visitor or its CRM customer had an earlier
session; links are retroactive and across devices): a device linked to the customer
afterwards, by a login or by ``POST /api/identify``, or another device's hits with earlier
event times arriving after the customer's sessions were written.  Real Tansu and chDB:
the sessionizer's consumer loop runs in this process, hits go through the broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from clickstream import broker as broker_mod
from clickstream import identity, warehouse
from clickstream.broker import EmbeddedBroker
from clickstream.hit import Hit
from clickstream.settings import Settings, load
from sessionizer import customer
from sessionizer.loop import Sessionizer

DAY = 86_400_000
NOW = int(time.time() * 1000)


def hit(vid: str, ts: int, path: str, uid: str = "") -> Hit:
    return Hit(
        site="shop",
        visitor_id=vid,
        hit_id=f"{vid}-{ts}",
        ts=ts,
        received=NOW,
        url="https://shop.example" + path,
        crm_id=uid,
    )


def _settings(kafka: EmbeddedBroker, db: str, topic: str, group: str) -> Settings:
    return load(
        flags={
            "kafka": kafka.bootstrap,
            "topic": topic,
            "consumer_group": group,
            "database": db,
            "flush_interval_s": 0.2,
            "topic_partitions": 2,
            "kafka_idempotence": "off",  # Tansu's memory storage refuses idempotent producers
        },
        env={},
    )


async def _produce(bootstrap: str, topic: str, *hits: Hit) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        for x in hits:
            await p.send_and_wait(topic, x.to_json(), key=x.key)
    finally:
        await p.stop()


@asynccontextmanager
async def running(kafka: EmbeddedBroker, ch: Client, db: str, topic: str, group: str = "g1"):  # type: ignore[no-untyped-def]
    sz = Sessionizer(_settings(kafka, db, topic, group), ch)
    task = asyncio.create_task(sz.run(kafka.bootstrap))
    try:
        yield sz
    finally:
        sz.stop.set()
        await task


class Shop:
    """One topic, one database, a sessionizer reading it; ``send`` puts hits on Kafka."""

    def __init__(self, kafka: EmbeddedBroker, ch: Client, db: str):
        self.kafka, self.ch, self.db = kafka, ch, db
        self.topic = "ret." + uuid.uuid4().hex[:8]

    async def send(self, *hits: Hit) -> None:
        await _produce(self.kafka.bootstrap, self.topic, *hits)

    def sessions(self) -> list[list[object]]:
        """(visitor, start day offset, session_number, is_returning, crm_id, is_closed)."""
        return warehouse.read_query(
            self.ch,
            f"SELECT visitor_id, toInt32(round((toUnixTimestamp64Milli(start_ts) - {NOW}) / {DAY})), "
            f"session_number, is_returning, crm_id, is_closed FROM {self.db}.sessions FINAL "
            "ORDER BY start_ts, visitor_id",
        ).rows

    def rows(self) -> list[tuple[object, ...]]:
        """Every column but the version, of every live session."""
        return sorted(
            tuple(r)
            for r in warehouse.read_query(
                self.ch, f"SELECT * EXCEPT (version) FROM {self.db}.sessions FINAL"
            ).rows
        )


@asynccontextmanager
async def shop(kafka: EmbeddedBroker, ch: Client, database: str) -> AsyncIterator[Shop]:
    s = Shop(kafka, ch, database)
    await broker_mod.ensure_topic(kafka.bootstrap, s.topic, 2)
    yield s


async def _until(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_a_device_linked_later_by_the_api_makes_the_customers_later_sessions_returning(
    kafka: EmbeddedBroker, ch: Client, database: str
) -> None:
    async with shop(kafka, ch, database) as s, running(kafka, ch, database, s.topic) as sz:
        # day 1: device B, anonymous; day 2: device A logs in as X
        await s.send(hit("devB", NOW - 3 * DAY, "/"), hit("devA", NOW - 2 * DAY, "/in", "X"))
        await sz.flush()
        assert s.sessions() == [["devB", -3, 1, 0, "", 1], ["devA", -2, 1, 0, "X", 1]]
        # day 3: POST /api/identify links B to X (as privacy_api.identify does)
        identity.link(ch, database, "shop", "devB", "X", "test")
        sz.relink("shop", "devB", "X")
        await sz.flush()
        # X's earliest session is B's on day 1: A's on day 2 is a returning one now
        assert s.sessions() == [["devB", -3, 1, 0, "", 1], ["devA", -2, 1, 1, "X", 1]]


async def test_a_login_on_a_device_seen_before_makes_the_customers_later_sessions_returning(
    kafka: EmbeddedBroker, ch: Client, database: str
) -> None:
    async with shop(kafka, ch, database) as s, running(kafka, ch, database, s.topic) as sz:
        await s.send(hit("devB", NOW - 3 * DAY, "/"), hit("devA", NOW - 2 * DAY, "/in", "X"))
        await sz.flush()
        await s.send(hit("devB", NOW - 1 * DAY, "/in", "X"))  # day 3: B logs in as X
        await sz.flush()
        assert s.sessions() == [
            ["devB", -3, 1, 0, "", 1],
            ["devA", -2, 1, 1, "X", 1],
            ["devB", -1, 2, 1, "X", 1],
        ]
        before = s.rows()
    # a replay of the whole topic (a new consumer group) writes the same rows
    async with running(kafka, ch, database, s.topic, group="g2") as again:
        await again.flush()
    assert again.hits_folded == 3
    assert s.rows() == before


async def test_a_replay_after_a_crash_between_a_write_and_its_settle_settles(
    kafka: EmbeddedBroker, ch: Client, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with shop(kafka, ch, database) as s, running(kafka, ch, database, s.topic) as sz:
        await s.send(hit("devB", NOW - 3 * DAY, "/"), hit("devA", NOW - 2 * DAY, "/in", "X"))
        await sz.flush()
        with monkeypatch.context() as m:  # B's login is written, the process dies before settling
            m.setattr(customer, "settle", lambda *args: 0)
            await s.send(hit("devB", NOW - 1 * DAY, "/in", "X"))
            await sz.flush()
        assert s.sessions()[1] == ["devA", -2, 1, 0, "X", 1]
    async with running(kafka, ch, database, s.topic, group="g2") as again:
        await again.flush()  # the replay of B's login settles X
    assert s.sessions() == [
        ["devB", -3, 1, 0, "", 1],
        ["devA", -2, 1, 1, "X", 1],
        ["devB", -1, 2, 1, "X", 1],
    ]


async def test_earlier_hits_of_another_device_arriving_later_make_the_stored_session_returning(
    kafka: EmbeddedBroker, ch: Client, database: str
) -> None:
    async with shop(kafka, ch, database) as s, running(kafka, ch, database, s.topic) as sz:
        await s.send(hit("devA", NOW - 2 * DAY, "/in", "X"))
        await sz.flush()
        # B's hits of day 1 (queued offline, or imported) arrive after A's session is written
        await s.send(hit("devB", NOW - 3 * DAY, "/in", "X"))
        await sz.flush()
        assert s.sessions() == [["devB", -3, 1, 0, "X", 1], ["devA", -2, 1, 1, "X", 1]]


async def test_an_open_session_made_returning_by_a_link_stays_returning_when_rewritten(
    kafka: EmbeddedBroker, ch: Client, database: str
) -> None:
    async with shop(kafka, ch, database) as s, running(kafka, ch, database, s.topic) as sz:
        await s.send(hit("devB", NOW - 3 * DAY, "/"))
        await sz.flush()
        # A logs in as X now: its session is open and written provisionally, not returning
        await s.send(hit("devA", NOW - 60_000, "/in", "X"))
        await _until(lambda: ["devA", 0, 1, 0, "X", 0] in s.sessions())
        identity.link(ch, database, "shop", "devB", "X", "test")  # B is X too
        sz.relink("shop", "devB", "X")
        await _until(lambda: ["devA", 0, 1, 1, "X", 0] in s.sessions())
        # A's next hit rewrites the open session: it must not say "not returning" again
        await s.send(hit("devA", NOW - 30_000, "/more"))
        hits = f"SELECT hits FROM {database}.sessions FINAL WHERE visitor_id = 'devA'"
        await _until(lambda: warehouse.read_query(ch, hits).rows == [[2]])
        assert s.sessions()[-1] == ["devA", 0, 1, 1, "X", 0]
        await sz.flush()
        assert s.sessions() == [["devB", -3, 1, 0, "", 1], ["devA", 0, 1, 1, "X", 1]]


async def test_a_devices_anonymous_session_after_the_customers_first_is_returning_and_stays(
    kafka: EmbeddedBroker, ch: Client, database: str
) -> None:
    """Links are retroactive: B's anonymous session of day 2 is the customer's once B logs
    in on day 3, and X had a session on day 1; a late hit that rewrites it keeps it so."""
    async with shop(kafka, ch, database) as s, running(kafka, ch, database, s.topic) as sz:
        await s.send(hit("devA", NOW - 4 * DAY, "/in", "X"), hit("devB", NOW - 3 * DAY, "/"))
        await sz.flush()
        assert [r[3] for r in s.sessions()] == [0, 0]
        await s.send(hit("devB", NOW - 1 * DAY, "/in", "X"))
        await sz.flush()
        assert [r[:4] for r in s.sessions()] == [
            ["devA", -4, 1, 0],
            ["devB", -3, 1, 1],
            ["devB", -1, 2, 1],
        ]
        await s.send(hit("devB", NOW - 3 * DAY + 60_000, "/late"))  # amends B's first session
        await sz.flush()
        sql = f"SELECT hits, is_returning FROM {database}.sessions FINAL WHERE visitor_id = 'devB'"
        assert warehouse.read_query(ch, sql + " ORDER BY start_ts").rows == [[2, 1], [1, 1]]
