"""Exactly-once results under kill -9 and rebalance, with real Tansu and chDB.

Sessionizers run as `clickstream sessionizer` subprocesses.  chDB allows one process
per engine path at a time, so:

- kill -9 + restart: the killed process and its successor use the same path one after
  the other; the uninterrupted run uses another database; `sessions FINAL` and
  `hits FINAL` must be identical (every column but `version`).
- two processes in one consumer group: each needs its own chDB path, so the
  comparison applies ReplacingMergeTree(version, is_deleted) to the UNION of both
  stores (rows carry a wall-clock version, comparable across processes) — what one
  shared ClickHouse would show under FINAL.  What such a split store cannot give is
  the survivor reading the killed process's rows (history, amends), so the stream
  has an anchor visitor first in every partition whose session stays open to the end:
  nothing is committed before the kill and the survivor replays the killed process's
  partitions from the start, as it would with any committed offset.  History and
  amends read across processes are covered by test_loop_chdb.py and the kill -9 test.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from clickstream import broker
from tests.sessionizer.delivery import PARTITIONS, Proc, as_final, produce, read_tables, stream

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kafka() -> Any:
    with broker.EmbeddedBroker() as b:
        yield b.bootstrap


def check_complete(result: dict[str, list[list[Any]]], phases: tuple[list[Any], list[Any]]) -> None:
    produced = {h.hit_id for ph in phases for _, h in ph}
    assert len(result["hits"]) == len(produced)
    assert len({r[1] for r in result["hits"]}) == len(produced)


async def run_uninterrupted(tmp: Path, kafka: str, topic: str, phases: Any, chdb: Path) -> dict[str, Any]:
    await broker.ensure_topic(kafka, topic, PARTITIONS)
    p = Proc(tmp, f"{topic}-single", kafka, chdb, "single", topic, f"g-{topic}-single")
    await produce(kafka, topic, phases[0] + phases[1])
    p.wait_metric("sessionizer_hits_total", len(phases[0]) + len(phases[1]))
    p.stop()
    return read_tables(chdb, "single", final=True)


async def test_kill9_mid_stream_then_restart_equals_uninterrupted(tmp_path: Path, kafka: str) -> None:
    phases = stream(seed=1, visitors=120, anchors=False)
    started = time.monotonic()
    chdb = tmp_path / "chdb"
    expected = await run_uninterrupted(tmp_path, kafka, "kill-base", phases, chdb)
    topic, group = "kill-run", "g-kill"
    await broker.ensure_topic(kafka, topic, PARTITIONS)
    first = Proc(tmp_path, "first", kafka, chdb, "crash", topic, group)
    await produce(kafka, topic, phases[0])
    first.wait_metric("sessionizer_hits_total", len(phases[0]))
    first.wait_metric("sessionizer_write_seconds_count", first.metric("sessionizer_write_seconds_count") + 1)
    first.kill9()
    await produce(kafka, topic, phases[1])
    second = Proc(tmp_path, "second", kafka, chdb, "crash", topic, group)
    second.stop()
    # FINAL rows; as_final again only drops `version` (and would drop deleted rows)
    got = as_final(read_tables(chdb, "crash", final=True))
    check_complete(got, phases)
    assert got["sessions"] == as_final(expected)["sessions"]
    assert got["hits"] == as_final(expected)["hits"]
    assert time.monotonic() - started < 90


async def test_two_processes_one_killed_equals_single_process(tmp_path: Path, kafka: str) -> None:
    phases = stream(seed=2, visitors=120, anchors=True)
    expected = as_final(await run_uninterrupted(tmp_path, kafka, "pair-base", phases, tmp_path / "c0"))
    topic, group = "pair-run", "g-pair"
    await broker.ensure_topic(kafka, topic, PARTITIONS)
    a = Proc(tmp_path, "a", kafka, tmp_path / "ca", "pair", topic, group)
    b = Proc(tmp_path, "b", kafka, tmp_path / "cb", "pair", topic, group)
    await asyncio.sleep(4)  # both members in the group
    await produce(kafka, topic, phases[0])
    a.wait_metric("sessionizer_hits_total", 1)
    b.wait_metric("sessionizer_hits_total", 1)  # both own partitions
    a.kill9()
    await produce(kafka, topic, phases[1])
    await asyncio.sleep(13)  # a's group session (10 s) expires: b gets all six partitions
    b.stop()
    got = as_final(read_tables(tmp_path / "ca", "pair", final=False),
                   read_tables(tmp_path / "cb", "pair", final=False))
    check_complete(got, phases)
    assert got["sessions"] == expected["sessions"]
    assert got["hits"] == expected["hits"]
