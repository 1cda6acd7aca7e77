"""The collector's group commit against the real Tansu broker: many requests, few commits,
every hit on the partition Kafka's default partitioner gives its key, in order."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from clickstream import broker as broker_mod
from clickstream.metrics import METRICS
from clickstream.partition import partition_for
from collector.sink import HitSink
from tests.resilience.kafka_util import make_hit

TOPIC = "t.commit"


async def _read(bootstrap: str, expect: int) -> dict[int, list[str]]:
    """hit ids per partition, in partition order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(3)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: dict[int, list[str]] = {0: [], 1: [], 2: []}
        deadline = time.monotonic() + 30
        while sum(map(len, out.values())) < expect and time.monotonic() < deadline:
            for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                out[tp.partition] += [
                    m.value.split(b'"hit_id":"')[1].split(b'"')[0].decode() for m in msgs
                ]
        return out
    finally:
        await consumer.stop()


async def test_concurrent_requests_share_commits_and_keep_kafkas_partitioning(broker, tmp_path):
    await broker_mod.ensure_topic(broker.bootstrap, TOPIC, 3)
    sink = HitSink(broker.bootstrap, TOPIC, False, tmp_path / "spool", 2.0, linger_ms=5)
    await sink.start()
    count0, sum0, _ = METRICS.summaries["collector_commit_hits"]
    hits = [make_hit(i, visitor=f"visitor-{i % 17:04d}") for i in range(300)]
    t0 = time.monotonic()
    results = await asyncio.gather(*(sink.put([h]) for h in hits))  # 300 requests at once
    waited = time.monotonic() - t0
    await sink.stop()
    assert results == [True] * 300
    count, total, _ = METRICS.summaries["collector_commit_hits"]
    assert total - sum0 == 300
    assert 1 <= count - count0 <= 3  # one commit took them all (a second may catch stragglers)
    assert waited >= 0.005  # the linger: the first request waited for company
    got = await _read(broker.bootstrap, 300)
    for part, ids in got.items():
        expected = [h.hit_id for h in hits if partition_for(h.key, 3) == part]
        assert ids == expected  # the default partitioner's choice, in arrival order
    assert sum(map(len, got.values())) == 300


async def test_commits_follow_each_other_and_answer_in_order(broker, tmp_path):
    """Requests that arrive while a commit is in flight go in the next one; none waits for ever."""
    await broker_mod.ensure_topic(broker.bootstrap, TOPIC, 3)
    sink = HitSink(broker.bootstrap, TOPIC, False, tmp_path / "spool", 2.0, linger_ms=0)
    await sink.start()
    answered: list[int] = []

    async def request(i: int) -> None:
        await asyncio.sleep(i * 0.001)
        assert await sink.put([make_hit(1000 + i)]) is True
        answered.append(i)

    await asyncio.gather(*(request(i) for i in range(50)))
    await sink.stop()
    assert sorted(answered) == list(range(50))
    got = await _read(broker.bootstrap, 50)
    assert sorted(i for ids in got.values() for i in ids) == [f"h{1000 + i:06d}" for i in range(50)]


async def test_stop_answers_the_requests_still_waiting(broker, tmp_path):
    await broker_mod.ensure_topic(broker.bootstrap, TOPIC, 3)
    sink = HitSink(broker.bootstrap, TOPIC, False, tmp_path / "spool", 2.0, linger_ms=100)
    await sink.start()
    answers: list[bool] = []
    for i in range(5):
        sink.submit([make_hit(2000 + i)], answers.append)  # lingering for 100 ms
    await sink.stop()  # does not wait for the linger, commits them now
    assert answers == [True] * 5
