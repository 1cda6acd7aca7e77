"""Integration: import produces exactly the expected hits on a real Tansu broker."""

from __future__ import annotations

import asyncio

from clickstream import broker
from clickstream.hit import Hit
from importer.convert import Converter
from importer.formats import compile_format
from importer.run import iter_hits, produce
from importer.stats import ImportStats
from tests.importer.importlog_helpers import SAMPLE, run_import

TOPIC = "clickstream.hits"
RECEIVED = 1_764_000_000_000


async def consume_all(
    bootstrap: str,
    expected: int,
    timeout: float = 30.0,
    partitions: dict[bytes, set[int]] | None = None,
) -> list[tuple[bytes, Hit]]:
    consumer = broker.consumer(bootstrap, "", TOPIC, group_id=None, client_id="importlog-test")
    await consumer.start()
    out: list[tuple[bytes, Hit]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(out) < expected and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                out.extend((r.key, Hit.from_json(r.value)) for r in records)
                if partitions is not None:
                    for r in records:
                        partitions.setdefault(r.key, set()).add(tp.partition)
        # anything beyond the expected count would be a bug: give it a moment to show up
        extra = await consumer.getmany(timeout_ms=1000)
        for records in extra.values():
            out.extend((r.key, Hit.from_json(r.value)) for r in records)
    finally:
        await consumer.stop()
    return out


async def import_sample(bootstrap: str) -> tuple[int, ImportStats]:
    stats = ImportStats()
    hits = iter_hits(
        [str(SAMPLE)], compile_format("combined"), Converter("semi", received=RECEIVED), stats
    )
    sent = await produce(hits, bootstrap, TOPIC, partitions=3, idempotence=False)
    return sent, stats


async def test_import_produces_exactly_the_expected_hits_and_reimport_the_same_ids():
    expected, _ = run_import([str(SAMPLE)], site="semi", received=RECEIVED)
    with broker.EmbeddedBroker() as tansu:
        sent, stats = await import_sample(tansu.bootstrap)
        assert (sent, stats.imported, stats.lines) == (124, 124, 202)
        partitions: dict[bytes, set[int]] = {}
        got = await consume_all(tansu.bootstrap, 124, partitions=partitions)
        assert len(got) == 124
        assert all(len(p) == 1 for p in partitions.values())  # one visitor, one partition
        assert len({p for ps in partitions.values() for p in ps}) == 3  # spread over the topic
        assert all(key == hit.key for key, hit in got)
        by_id = {hit.hit_id: hit for _, hit in got}
        assert by_id == {hit.hit_id: hit for hit in expected}
        # per visitor, Kafka keeps the file's order (one key, one partition)
        for vid in {h.visitor_id for h in expected}:
            assert [h.hit_id for _, h in got if h.visitor_id == vid] == [
                h.hit_id for h in expected if h.visitor_id == vid
            ]

        sent_again, _ = await import_sample(tansu.bootstrap)
        assert sent_again == 124
        both = await consume_all(
            tansu.bootstrap, 248
        )  # nothing committed: the topic from the start
        assert len(both) == 248
        assert sorted(h.hit_id for _, h in both) == sorted(
            list(by_id) * 2
        )  # the same 124 ids twice
