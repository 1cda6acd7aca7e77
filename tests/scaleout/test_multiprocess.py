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
from pathlib import Path

import pytest

from clickstream import broker
from tests.scaleout.traffic import CollectorProc, anchors, plan, send
from tests.sessionizer.delivery import Proc, Reader, as_final

pytestmark = pytest.mark.slow
PARTITIONS = 6
DB = "scale"


def wait_until(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


async def test_two_collectors_three_sessionizers_kill_and_add_equals_single(
    tmp_path: Path, kafka: broker.EmbeddedBroker
) -> None:
    started = time.monotonic()
    topic = "scaleout"
    await broker.ensure_topic(kafka.bootstrap, topic, PARTITIONS)
    traffic = plan(seed=9, visitors=48)
    anchor = anchors(PARTITIONS, seed=9)
    collectors = [CollectorProc(tmp_path, f"collector{i}", kafka.bootstrap, topic) for i in range(2)]

    def sessionizer(name: str, group: str) -> Proc:
        return Proc(tmp_path, name, kafka.bootstrap, tmp_path / f"ch-{name}", DB, topic, group, wait=False)

    single = sessionizer("single", "g-single")
    members = {n: sessionizer(n, "g-scale") for n in ("a", "b", "c")}
    for p in (*collectors, single, *members.values()):
        p.wait_healthy()
    for p in members.values():  # the group settled: two partitions each
        p.wait_metric("sessionizer_assigned_partitions", 2, timeout=90, exact=True)
    urls = [c.url for c in collectors]

    sent = await send(anchor, urls, (0, 1))
    sent += await send(traffic, urls, (0, 0.4))
    for p in members.values():  # each member folded hits and wrote (provisional) rows
        p.wait_metric("sessionizer_hits_total", 1)
        p.wait_metric("sessionizer_write_seconds_count", 1)
    members.pop("a").kill9()
    sent += await send(traffic, urls, (0.4, 0.7))
    members["d"] = d = sessionizer("d", "g-scale")
    d.wait_healthy()
    d.wait_metric("sessionizer_assigned_partitions", 1, timeout=90)  # d owns partitions
    sent += await send(traffic, urls, (0.7, 1))

    expected_hits = sum(v.hits for v in (*anchor, *traffic))
    expected_sessions = sum(v.sessions for v in (*anchor, *traffic))
    assert sent == expected_hits
    assert sum(c.metric("hits_accepted_total") for c in collectors) == expected_hits
    for c in collectors:
        assert c.metric("hits_accepted_total") > 100  # both collectors took a share
        c.stop()
    # the group owns all six partitions again (a's session expired, d joined)
    wait_until(lambda: sum(p.metric("sessionizer_assigned_partitions") for p in members.values()) == PARTITIONS,
               "b, c and d to own the six partitions", timeout=90)
    single.wait_metric("sessionizer_hits_total", expected_hits)
    single.stop()
    for p in members.values():  # rolling stop: each drains, closes every session, commits
        p.stop()

    readers = {n: Reader(tmp_path / f"ch-{n}", DB, final=False) for n in ("a", "b", "c", "d")}
    expected = as_final(Reader(tmp_path / "ch-single", DB, final=True).result())
    stores = {n: r.result() for n, r in readers.items()}
    for n, store in stores.items():  # every member wrote rows, the killed one too
        assert len(store["sessions"]) > 1, n
    got = as_final(*stores.values())
    assert len(expected["hits"]) == expected_hits
    assert len(expected["sessions"]) == expected_sessions
    assert got["hits"] == expected["hits"]
    assert got["sessions"] == expected["sessions"]
    print(f"scale-out run: {expected_hits} hits, {expected_sessions} sessions, "
          f"{time.monotonic() - started:.1f} s")
