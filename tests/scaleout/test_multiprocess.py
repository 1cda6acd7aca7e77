"""Scale-out on one machine: 2 collectors, 3 sessionizers in one consumer group, a
6-partition topic on Tansu; one sessionizer killed (-9) and a fourth added mid-stream.
The result equals one sessionizer process reading the same topic alone.

The run:
1. two `clickstream collector` processes, three `clickstream sessionizer` processes in
   group G (two partitions each) and one reference sessionizer in its own group R, all
   on one topic of six partitions;
2. six anchor visitors first (one per partition, one hit each), then browser-like
   traffic over HTTP through both collectors (pixels and beacon batches, cookies, some
   visitors alternating between the two collectors), in three parts:
   part 1 → every member of G has folded and written rows → kill -9 one of them;
   part 2 → start a fourth member; part 3 once it owns partitions;
3. SIGTERM the collectors, the reference and the three live members one by one (each
   drains its partitions, closes and writes every session, commits) and compare.

Why the union of the stores is the answer one shared ClickHouse would give: chDB allows
one process per engine path, so each member writes its own store.  Every row carries a
``version`` from a microsecond clock (comparable across processes on one machine), and
``ReplacingMergeTree(version, is_deleted)`` under FINAL keeps per key the highest
version and drops deleted rows; ``as_final`` applies exactly that to the union of the
four stores.  What separate stores cannot give is one member reading rows another
member wrote (history: session numbers, returning visitors; amends).  The anchors make
that unnecessary: each partition's first record is an anchor hit whose session stays
open to the end, so no member commits past offset 0 before the final SIGTERM, and every
new owner of a partition (after the kill, after the fourth member joined, after each
graceful stop) replays it from the start and rebuilds every session from the hits
themselves, writing them with newer versions than any earlier owner.  A member that
gets back a partition it owned before reads its own older rows as history; the
replayed hits then touch those stored sessions and the visitor is amended from its
stored hits plus the replayed ones, i.e. rebuilt from all its hits again.  Sessions
split on event time only (timeout, campaign): the hits' `received` stamps lie within
a minute, far from the 30 min that would close a session on the partition clock.

Compared: every column of `hits FINAL` and `sessions FINAL` but `version` (both runs
read the same records, so even the collectors' stamps and random hit ids are shared),
plus exact counts planned by the traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clickstream import broker
from tests.scaleout.traffic import BOT_UA, CollectorProc, Visitor, anchors, plan, send
from tests.sessionizer.delivery import Proc, Reader, as_final

pytestmark = pytest.mark.slow
PARTITIONS = 6
DB = "scale"


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: list[str] = []

    def mark(self, what: str) -> None:
        self.marks.append(f"{time.monotonic() - self.start:6.1f} s  {what}")

    def __str__(self) -> str:
        return "\n".join(self.marks)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def check_coverage(reference: dict[str, list[list[Any]]], visitors: list[Visitor]) -> None:
    """The reference run holds what the traffic planned, and the compared columns are not
    trivially empty (flags, campaigns, CRM ids, revenue, bots, both hit sources)."""
    cols, rows = reference["sessions"][0], reference["sessions"][1:]
    count = {c: sum(1 for r in rows if r[cols.index(c)]) for c in cols}
    assert count["is_returning"] == len(rows) - len(visitors)  # every session after the first
    assert count["is_bot"] == sum(v.sessions for v in visitors if v.user_agent == BOT_UA)
    for c in ("back_loops", "dead_end_searches", "utm_campaign", "crm_id", "revenue", "is_bounce"):
        assert 0 < count[c] < len(rows), c
    hcols, hits = reference["hits"][0], reference["hits"][1:]
    source = hcols.index("source")
    beacons = sum(len(r.events) for v in visitors for r in v.requests if r.beacon)
    assert sum(1 for h in hits if h[source] == "beacon") == beacons
    assert sum(1 for h in hits if h[source] == "pixel") == len(hits) - beacons


def owned(members: dict[str, Proc]) -> float:
    return sum(p.metric("sessionizer_assigned_partitions") for p in members.values())


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[broker.EmbeddedBroker]:
    """A broker of this test's own: the run's shared one holds the topics and consumer
    groups of every test before it (CI once saw the reference stall there, 2026-12-04)."""
    with broker.EmbeddedBroker(log_path=tmp_path / "broker.log") as b:
        yield b


async def test_two_collectors_three_sessionizers_kill_and_add_equals_single(
    tmp_path: Path, kafka: broker.EmbeddedBroker
) -> None:
    clock = Timeline()
    try:
        await run_and_compare(tmp_path, kafka, clock)
    except AssertionError as exc:  # where the run was when it failed
        raise AssertionError(f"{exc}\ntimeline:\n{clock}") from exc
    print(clock)


async def run_and_compare(tmp_path: Path, kafka: broker.EmbeddedBroker, clock: Timeline) -> None:
    topic = "scaleout"
    await broker.ensure_topic(kafka.bootstrap, topic, PARTITIONS)
    traffic = plan(seed=9, visitors=48)
    anchor = anchors(PARTITIONS, seed=9)
    procs: list[Proc | CollectorProc] = []

    def sessionizer(name: str, group: str) -> Proc:
        chdb = tmp_path / f"ch-{name}"
        p = Proc(tmp_path, name, kafka.bootstrap, chdb, DB, topic, group, wait=False)
        procs.append(p)
        return p

    try:
        collectors = [
            CollectorProc(tmp_path, f"collector{i}", kafka.bootstrap, topic) for i in range(2)
        ]
        procs += collectors
        single = sessionizer("single", "g-single")
        members = {n: sessionizer(n, "g-scale") for n in ("a", "b", "c")}
        for p in procs:
            p.wait_healthy()
        single.wait_metric("sessionizer_assigned_partitions", PARTITIONS, timeout=90, exact=True)
        for m in members.values():  # the group settled: two partitions each
            m.wait_metric("sessionizer_assigned_partitions", 2, timeout=90, exact=True)
        clock.mark("7 processes up, 2 partitions per member")
        urls = [c.url for c in collectors]

        sent = await send(anchor, urls, (0, 1))
        sent += await send(traffic, urls, (0, 0.4))
        for m in members.values():  # each member folded hits and wrote (provisional) rows
            m.wait_metric("sessionizer_hits_total", 1)
            m.wait_metric("sessionizer_write_seconds_count", 1)
        members.pop("a").kill9()
        clock.mark("part 1 sent, a killed")
        sent += await send(traffic, urls, (0.4, 0.7))
        members["d"] = d = sessionizer("d", "g-scale")
        d.wait_healthy()
        d.wait_metric("sessionizer_assigned_partitions", 1, timeout=90)  # d owns partitions
        clock.mark("part 2 sent, d owns partitions")
        sent += await send(traffic, urls, (0.7, 1))
        clock.mark("part 3 sent")

        expected_hits = sum(v.hits for v in (*anchor, *traffic))
        expected_sessions = sum(v.sessions for v in (*anchor, *traffic))
        assert sent == expected_hits
        accepted = [c.metric("hits_accepted_total") for c in collectors]
        assert sum(accepted) == expected_hits
        assert min(accepted) > expected_hits / 4  # both collectors took a share
        for c in collectors:
            c.stop()
        # b, c and d own all six partitions (a's session expired, d joined)
        wait_until(lambda: owned(members) == PARTITIONS, "b, c, d to own the partitions", 90)
        single.wait_metric("sessionizer_hits_total", expected_hits)
        single.stop()
        clock.mark("group settled, reference stopped")
        # rolling stop: each drains its partitions, closes every session, commits, leaves;
        # the next one stops once the others own its partitions (with back-to-back stops,
        # Tansu once left a member's SyncGroup unanswered for over a minute)
        while members:
            members.pop(next(iter(members))).stop()
            if members:
                wait_until(lambda: owned(members) == PARTITIONS, "the rest to own all", 60)
        clock.mark("members stopped one by one")
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()

    readers = {n: Reader(tmp_path / f"ch-{n}", DB, final=False) for n in ("a", "b", "c", "d")}
    reference = Reader(tmp_path / "ch-single", DB, final=True).result()
    expected = as_final(reference)
    stores = {n: r.result() for n, r in readers.items()}
    for n, store in stores.items():  # every member wrote rows, the killed one too
        assert len(store["sessions"]) > 1, n
    # partitions changed hands: sessions written by several members (newest version wins)
    sid = stores["a"]["sessions"][0].index("session_id")
    ids = [{r[sid] for r in store["sessions"][1:]} for store in stores.values()]
    assert sum(len(x) for x in ids) > len(set().union(*ids))
    got = as_final(*stores.values())
    assert (expected_hits, expected_sessions) == (384, 112)  # seed 9: 48 visitors + 6 anchors
    assert len(expected["hits"]) == expected_hits
    assert len(expected["sessions"]) == expected_sessions
    check_coverage(reference, [*anchor, *traffic])
    assert got["hits"] == expected["hits"]
    assert got["sessions"] == expected["sessions"]
    clock.mark(f"compared {expected_hits} hits, {expected_sessions} sessions")
