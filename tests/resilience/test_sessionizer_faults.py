"""The sessionizer against real Tansu and chDB: poison records, ClickHouse away and back."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from clickstream import broker as broker_mod
from clickstream import settings as settings_mod
from clickstream import warehouse
from clickstream.metrics import METRICS
from sessionizer.loop import Sessionizer
from tests.resilience.kafka_util import make_hit


def _settings(b, name: str):
    return settings_mod.load(
        flags={
            "kafka": b.bootstrap,
            "topic": f"{name}.hits",
            "consumer_group": f"g-{name}",
            "database": name,
            "flush_interval_s": 0.2,
            "topic_partitions": 2,
            "kafka_idempotence": "off",  # Tansu's memory storage refuses idempotent producers
        },
        env={},
    )


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        for key, value in records:
            await p.send_and_wait(topic, value, key=key)
    finally:
        await p.stop()


async def _until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def _one(client, sql: str):
    return warehouse.read_query(client, sql).rows[0]


async def test_poison_records_go_to_the_dead_letter_topic_with_a_reason(broker, ch):
    s = _settings(broker, "t_poison")
    warehouse.migrate(ch, s.database)
    await broker_mod.ensure_topic(broker.bootstrap, s.topic, 2)
    good = [make_hit(i) for i in range(2)]
    bad_version = good[0].to_json().replace(b'"v":1', b'"v":2')
    await _produce(
        broker.bootstrap,
        s.topic,
        [
            (b"k1", b"not json"),
            (good[0].key, good[0].to_json()),
            (b"k2", bad_version),
            (b"k3", b"[1,2]"),
            (good[1].key, good[1].to_json()),
        ],
    )
    before = METRICS.by_label("sessionizer_poison_records_total", "reason")
    sz = Sessionizer(s, ch)
    task = asyncio.create_task(sz.run(broker.bootstrap))
    await _until(
        lambda: METRICS.total("sessionizer_hits_total") > 0 and not sz.dead and sz.dlq is not None
    )
    await sz.flush()
    sz.stop.set()
    await task
    after = METRICS.by_label("sessionizer_poison_records_total", "reason")
    assert {k: after[k] - before.get(k, 0) for k in after} == {
        "not_json": 1,
        "bad_version": 1,
        "not_object": 1,
    }
    assert _one(ch, "SELECT count() FROM t_poison.hits FINAL") == [2]

    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition("t_poison.hits.dlq", 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 3 and time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=300)).values():
                got += msgs
    finally:
        await consumer.stop()
    reasons = sorted(dict(m.headers)["reason"].decode().split(":")[0] for m in got)
    assert reasons == ["bad_version", "not_json", "not_object"]
    assert sorted(m.value for m in got) == sorted([b"not json", bad_version, b"[1,2]"])
    assert all(dict(m.headers)["origin"].startswith(b"t_poison.hits/") for m in got)


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        total = 0
        for p in (0, 1):
            total += await c.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await c.stop()


async def test_clickhouse_away_then_back_loses_and_doubles_nothing(broker, ch):
    s = _settings(broker, "t_chdown")
    db = s.database
    warehouse.migrate(ch, db)
    await broker_mod.ensure_topic(broker.bootstrap, s.topic, 2)
    base = int(time.time() * 1000) - 60_000  # recent: sessions stay open between the phases
    first = [
        make_hit(v * 100 + i, visitor=f"visitor-{v:04d}", ts=base)
        for v in range(3)
        for i in range(5)
    ]
    await _produce(broker.bootstrap, s.topic, [(h.key, h.to_json()) for h in first])
    # phase 1: the sessions table is away before the sessionizer starts (history reads fail)
    ch.command(f"DETACH TABLE {db}.sessions")
    reads = METRICS.total("sessionizer_read_errors_total")
    writes = METRICS.total("sessionizer_write_errors_total")
    sz = Sessionizer(s, ch)
    task = asyncio.create_task(sz.run(broker.bootstrap))
    await _until(lambda: METRICS.total("sessionizer_read_errors_total") >= reads + 3)
    assert not task.done()
    assert await _committed(broker.bootstrap, s.consumer_group, s.topic) == 0
    ch.command(f"ATTACH TABLE {db}.sessions")
    await _until(lambda: _one(ch, f"SELECT count() FROM {db}.hits FINAL") == [15])
    # phase 2: the hits table goes away mid-stream (writes fail after the sessions insert
    # of the same batch may or may not have happened), then comes back
    ch.command(f"DETACH TABLE {db}.hits")
    second = [
        make_hit(v * 100 + i, visitor=f"visitor-{v:04d}", ts=base)
        for v in range(3)
        for i in range(5, 10)
    ]
    await _produce(broker.bootstrap, s.topic, [(h.key, h.to_json()) for h in second])
    await _until(lambda: METRICS.total("sessionizer_write_errors_total") >= writes + 3)
    assert not task.done()
    ch.command(f"ATTACH TABLE {db}.hits")
    await _until(lambda: _one(ch, f"SELECT count() FROM {db}.hits FINAL") == [30])
    await sz.flush()
    sz.stop.set()
    await task
    assert _one(ch, f"SELECT count(), uniqExact(hit_id) FROM {db}.hits FINAL") == [30, 30]
    rows = warehouse.read_query(
        ch, f"SELECT visitor_id, hits, is_closed FROM {db}.sessions FINAL ORDER BY visitor_id"
    ).rows
    assert rows == [["visitor-0000", 10, 1], ["visitor-0001", 10, 1], ["visitor-0002", 10, 1]]
    assert await _committed(broker.bootstrap, s.consumer_group, s.topic) == 30
