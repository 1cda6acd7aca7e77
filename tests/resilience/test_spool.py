"""The collector's sink against the real Tansu broker: direct, spooled, replayed, full."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from clickstream import broker as broker_mod
from clickstream.metrics import METRICS
from collector.sink import HitSink
from tests.resilience.kafka_util import make_hit, read_topic

TOPIC = "t.spool"


async def _sink(b, tmp_path, timeout=0.5, **kw) -> HitSink:
    await broker_mod.ensure_topic(b.bootstrap, TOPIC, 3)
    sink = HitSink(b.bootstrap, TOPIC, False, tmp_path / "spool", timeout, **kw)
    await sink.start()
    return sink


async def test_direct_produce_when_kafka_is_up(broker, tmp_path):
    sink = await _sink(broker, tmp_path)
    before = METRICS.total("hits_spooled_total")
    assert await sink.put([make_hit(i) for i in range(3)]) is True
    await sink.stop()
    hits = await read_topic(broker.bootstrap, TOPIC, 3)
    assert [h.hit_id for h in hits] == ["h000000", "h000001", "h000002"]
    assert METRICS.total("hits_spooled_total") == before
    assert list((tmp_path / "spool").iterdir()) == []


async def test_stopped_broker_spools_fast_and_replays_in_order_after_restart(broker, tmp_path):
    sink = await _sink(broker, tmp_path)
    assert await sink.put([make_hit(0)])
    broker.stop()
    slowest = 0.0
    for i in range(1, 41):
        started = time.monotonic()
        assert await sink.put([make_hit(i)]) is True
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.5 + 0.3  # never waits on Kafka beyond produce_timeout_s
    assert sink.spooling
    spooled = b"".join(p.read_bytes() for p in sorted((tmp_path / "spool").glob("spool-*.jsonl")))
    assert spooled.count(b"\n") == 40
    broker.start()  # memory storage: a new, empty broker on the same port
    for _ in range(60):
        if not sink.spooling:
            break
        await asyncio.sleep(0.5)
    assert not sink.spooling
    await sink.stop()
    hits = await read_topic(broker.bootstrap, TOPIC, 40)
    # the hit produced before the stop died with the memory broker; the 40 answered
    # while it was away arrive exactly once, in order (one visitor, one partition)
    assert [h.hit_id for h in hits] == [f"h{i:06d}" for i in range(1, 41)]
    assert sorted(p.name for p in (tmp_path / "spool").iterdir()) == []


async def test_paused_broker_answer_is_bounded_and_nothing_doubles(broker, tmp_path):
    """SIGSTOP: the broker accepts TCP but never answers (slow Kafka, not a dead one)."""
    sink = await _sink(broker, tmp_path, timeout=0.3)
    assert await sink.put([make_hit(0)])
    os.kill(broker.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert await sink.put([make_hit(1), make_hit(2)]) is True
        first = time.monotonic() - started
        started = time.monotonic()
        assert await sink.put([make_hit(3)]) is True
        second = time.monotonic() - started
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    assert first < 0.3 + 0.2
    assert second < 0.1  # already spooling: no wait on Kafka at all
    for _ in range(60):
        if not sink.spooling:
            break
        await asyncio.sleep(0.5)
    await sink.stop()
    hits = await read_topic(broker.bootstrap, TOPIC, 4)
    # the timed-out send of h1, h2 may be delivered late: replay skips it then
    assert sorted(h.hit_id for h in hits) == ["h000000", "h000001", "h000002", "h000003"]


async def test_spool_full_drops_and_counts(tmp_path):
    port = broker_mod.free_port()  # nothing listens here
    sink = HitSink(f"127.0.0.1:{port}", TOPIC, False, tmp_path / "spool", 0.2, max_bytes=4096)
    await sink.start()
    dropped = METRICS.get("hits_dropped_total", reason="spool_full")
    line = len(make_hit(0).to_json()) + 1
    fits = 4096 // line
    results = [await sink.put([make_hit(i)]) for i in range(fits + 3)]
    assert results == [True] * fits + [False] * 3
    assert METRICS.get("hits_dropped_total", reason="spool_full") == dropped + 3
    assert METRICS.gauges["spool_full"] == 1
    assert METRICS.gauges["spool_bytes"] == fits * line
    await sink.stop(timeout=0.5)
    assert sum(p.stat().st_size for p in (tmp_path / "spool").glob("spool-*.jsonl")) == fits * line


async def test_a_new_process_replays_a_dead_ones_spool_and_skips_corrupt_lines(broker, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = [make_hit(i).to_json() for i in range(5)]
    (spool / "spool-00000000000000000001-999.jsonl").write_bytes(
        b"\n".join(lines[:3]) + b"\n" + b'{"torn": \n'
    )
    (spool / "spool-00000000000000000002-999.jsonl").write_bytes(b"\n".join(lines[3:]) + b"\n")
    corrupt = METRICS.total("spool_corrupt_lines_total")
    sink = await _sink(broker, tmp_path)
    assert sink.spooling  # hits on disk: new ones queue behind them
    assert await sink.put([make_hit(5)])
    assert await sink.replay() == 6
    assert not sink.spooling
    await sink.stop()
    hits = await read_topic(broker.bootstrap, TOPIC, 6)
    assert [h.hit_id for h in hits] == [f"h{i:06d}" for i in range(6)]
    assert METRICS.total("spool_corrupt_lines_total") == corrupt + 1
    assert list(spool.iterdir()) == []


async def test_a_live_writers_file_is_not_replayed_by_a_sibling(broker, tmp_path):
    dead = broker_mod.free_port()
    writer = HitSink(f"127.0.0.1:{dead}", TOPIC, False, tmp_path / "spool", 0.2)
    await writer.start()
    assert await writer.put([make_hit(0)])  # writer's file stays open and locked
    sibling = await _sink(broker, tmp_path)
    assert await sibling.replay() == 0
    assert len(list((tmp_path / "spool").glob("spool-*.jsonl"))) == 1
    await writer.spool.close_current()  # writer dies or rotates: lock released
    assert await sibling.replay() == 1
    await sibling.stop()
    await writer.stop(timeout=0.5)
    hits = await read_topic(broker.bootstrap, TOPIC, 1)
    assert [h.hit_id for h in hits] == ["h000000"]


async def test_steady_traffic_during_replay_does_not_keep_the_collector_spooling(broker, tmp_path):
    sink = await _sink(broker, tmp_path)
    broker.stop()
    for i in range(20):
        assert await sink.put([make_hit(i)])
    broker.start()
    spooling_seen_off_at = None
    n = 20
    started = time.monotonic()
    while time.monotonic() - started < 15:  # 100 hits/s, never pausing
        assert await sink.put([make_hit(n, visitor=f"visitor-{n % 7:04d}")])
        n += 1
        if not sink.spooling and spooling_seen_off_at is None:
            spooling_seen_off_at = time.monotonic() - started
        if spooling_seen_off_at is not None and n % 50 == 0:
            break
        await asyncio.sleep(0.01)
    assert spooling_seen_off_at is not None and spooling_seen_off_at < 10
    await sink.stop()
    hits = await read_topic(broker.bootstrap, TOPIC, n)
    assert sorted(h.hit_id for h in hits) == [f"h{i:06d}" for i in range(n)]
