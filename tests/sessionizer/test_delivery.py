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
  partitions from the start, as it would with any committed offset.  For the same
  reason this stream has no late hits: a late hit that changes a session's first hit
  makes the survivor delete the old id only if it can read it (a shared ClickHouse).
  History and amends read across processes are covered by test_loop_chdb.py and the
  kill -9 test (one store, late hits included).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream import broker
from tests.sessionizer import delivery
from tests.sessionizer.delivery import (
    PARTITIONS,
    Proc,
    Reader,
    as_final,
    produce,
    read_tables,
    stream,
)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    delivery.kill_leftovers()


@pytest.fixture
def kafka(kafka: broker.EmbeddedBroker) -> str:  # the shared Tansu of tests/conftest.py
    return kafka.bootstrap


def check_complete(result: dict[str, list[list[Any]]], phases: tuple[list[Any], list[Any]]) -> None:
    produced = {h.hit_id for ph in phases for _, h in ph}
    assert len(result["hits"]) == len(produced)
    assert len({r[1] for r in result["hits"]}) == len(produced)


def start_single(tmp: Path, kafka: str, topic: str, chdb: Path) -> Proc:
    return Proc(
        tmp, f"{topic}-single", kafka, chdb, "single", topic, f"g-{topic}-single", wait=False
    )


def finish_single(p: Proc, phases: Any, chdb: Path) -> Reader:
    p.wait_metric("sessionizer_hits_total", len(phases[0]) + len(phases[1]))
    p.stop()
    return Reader(chdb, "single", final=True)


async def test_kill9_mid_stream_then_restart_equals_uninterrupted(
    tmp_path: Path, kafka: str
) -> None:
    phases = stream(seed=1, visitors=120, anchors=False)
    chdb = tmp_path / "chdb"
    topic, group = "kill-run", "g-kill"
    for t in ("kill-base", topic):
        await broker.ensure_topic(kafka, t, PARTITIONS)
    single = start_single(tmp_path, kafka, "kill-base", tmp_path / "c0")
    first = Proc(tmp_path, "first", kafka, chdb, "crash", topic, group)
    single.wait_healthy()
    await produce(kafka, "kill-base", phases[0] + phases[1])
    await produce(kafka, topic, phases[0])
    first.wait_metric("sessionizer_hits_total", len(phases[0]))
    first.wait_metric(
        "sessionizer_hits_flushed", len(phases[0])
    )  # rows written, offsets partly committed
    first.kill9()  # open sessions in memory, some written provisionally, offsets partly committed
    await produce(kafka, topic, phases[1])
    second = Proc(tmp_path, "second", kafka, chdb, "crash", topic, group, wait=False)
    expected = as_final(finish_single(single, phases, tmp_path / "c0").result())
    second.wait_healthy()
    second.stop()
    # FINAL rows; as_final again only drops `version` (and would drop deleted rows)
    got = as_final(read_tables(chdb, "crash", final=True))
    check_complete(got, phases)
    assert got["sessions"] == expected["sessions"]
    assert got["hits"] == expected["hits"]


async def test_two_processes_one_killed_equals_single_process(tmp_path: Path, kafka: str) -> None:
    phases = stream(seed=2, visitors=120, anchors=True, late=0)
    topic, group = "pair-run", "g-pair"
    for t in ("pair-base", topic):
        await broker.ensure_topic(kafka, t, PARTITIONS)
    single = start_single(tmp_path, kafka, "pair-base", tmp_path / "c0")
    a = Proc(tmp_path, "a", kafka, tmp_path / "ca", "pair", topic, group, wait=False)
    b = Proc(tmp_path, "b", kafka, tmp_path / "cb", "pair", topic, group, wait=False)
    for p in (single, a, b):
        p.wait_healthy()
    await produce(kafka, "pair-base", phases[0] + phases[1])
    for p in (a, b):  # both members joined the group and own three partitions each
        p.wait_metric("sessionizer_assigned_partitions", PARTITIONS // 2, timeout=90, exact=True)
    await produce(kafka, topic, phases[0])
    for p in (a, b):  # both own partitions and have written provisional rows
        p.wait_metric("sessionizer_hits_total", 1)
        p.wait_metric("sessionizer_write_seconds_count", 1)
    a.kill9()
    await produce(kafka, topic, phases[1])
    expected = as_final(finish_single(single, phases, tmp_path / "c0").result())
    # a's group session (10 s) expires, b is assigned all six partitions, then drains them
    b.wait_metric("sessionizer_assigned_partitions", PARTITIONS, timeout=90)
    b.stop()
    ra, rb = (
        Reader(tmp_path / "ca", "pair", final=False),
        Reader(tmp_path / "cb", "pair", final=False),
    )
    store_a = ra.result()
    assert len(store_a["sessions"]) > 1  # the killed process had written (provisional) rows
    got = as_final(store_a, rb.result())
    check_complete(got, phases)
    assert got["sessions"] == expected["sessions"]
    assert got["hits"] == expected["hits"]
