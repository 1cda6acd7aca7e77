"""Helpers for the resilience tests: read a topic back from the real broker."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from clickstream.hit import Hit


async def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[Hit]:
    """Every record of ``topic`` from the beginning (stops at ``expect`` or after a quiet second)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        parts = None
        while parts is None and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if parts is None:
                await consumer._client.force_metadata_update()  # noqa: SLF001
                await asyncio.sleep(0.2)
        assert parts, f"topic {topic} not found"
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        hits: list[Hit] = []
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            got = [Hit.from_json(m.value) for msgs in batch.values() for m in msgs]
            hits += got
            if got:
                quiet_since = time.monotonic()
            elif len(hits) >= expect and time.monotonic() - quiet_since > 1.0:
                break
        return hits
    finally:
        await consumer.stop()


def make_hit(
    i: int, visitor: str = "visitor-0001", site: str = "site-a", ts: int = 1_700_000_000_000
) -> Hit:
    return Hit(
        site=site,
        visitor_id=visitor,
        hit_id=f"h{i:06d}",
        ts=ts + i * 1000,
        received=ts + i * 1000,
        url=f"https://example.com/p{i}",
    )
