"""Where accepted hits go: Kafka, or the local spool when Kafka is slow or away.

:meth:`HitSink.put` (or :meth:`HitSink.submit`) returns True only once the hits are acknowledged by Kafka
(acks=all) or appended to the spool (fsynced under ``spool_fsync=always``), and it
never waits on Kafka longer than ``produce_timeout_s``: an answered request is
never lost and never slow.  It returns False when the spool is full
(``spool_max_bytes``): the hits are dropped, counted as ``spool_full``, and the
caller says so (the beacon answers 503 so that the tracker retries; the pixel
still answers its GIF, a browser cannot retry an image).

While anything is spooled, new hits are spooled too, so that they reach Kafka
after the older ones; a background task replays the spool oldest first, in
chunks, once Kafka answers again (a single-record probe first, so a broker that
is still away does not receive a burst that half succeeds).

Duplicates: a produce that times out may still be delivered later; such hits
are spooled and their late acknowledgement is remembered, and replay skips them.
A crash between a replayed chunk's acknowledgement and its progress mark repeats
that chunk; the sessionizer folds a hit id once, and ``hits`` is a
ReplacingMergeTree keyed by hit id, so the tables stay exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from clickstream import broker
from clickstream.hit import Hit
from clickstream.metrics import METRICS
from clickstream.partition import partitions_for
from collector.spool import Spool, read_from

log = logging.getLogger("clickstream.collector")
CHUNK = 1000
LINGER_ENOUGH = 500  # hits waiting: commit now, whatever the linger
# Commits in flight at once: with one, a closed group of clients moves in lockstep (the
# process idles while Kafka acknowledges, then Kafka idles while it answers and reads);
# with two, one commit's answers and the next one's requests overlap the other's wait.
# Kafka still sends a partition's batches in order (aiokafka mutes a partition in flight).
IN_FLIGHT = 2
ALARM_EVERY_S = 60.0


class HitSink:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        idempotence: bool,
        spool_dir: Path,
        timeout_s: float,
        fsync: str = "always",
        max_bytes: int = 1 << 30,
        partitions: int = 6,
        linger_ms: float = 0.0,
    ):
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.idempotence = idempotence
        self.timeout = timeout_s
        self.spool = Spool(spool_dir, fsync, max_bytes)
        self.producer: AIOKafkaProducer | None = None
        # Kafka failed us, or hits wait on disk: spool new ones until a replay drains them
        self.degraded = bool(self.spool.files())
        self._late: dict[str, asyncio.Future[Any]] = {}  # hit_id -> send future that timed out
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: list[tuple[bytes, bytes, str]] = []  # this tick's records, in arrival order
        self._waiters: list[Callable[[bool], None]] = []  # the requests waiting for the next commit
        self._flush_scheduled = False
        self._commits: set[asyncio.Task[None]] = set()  # in flight, at most IN_FLIGHT
        self._first_at = 0.0  # loop time of the oldest waiting request
        self.linger_s = linger_ms / 1000
        self._lock = asyncio.Lock()
        self._last_alarm = 0.0
        METRICS.set("spool_bytes", self.spool.bytes)

    async def start(self) -> None:
        await self._connect(timeout=min(10.0, max(self.timeout, 2.0)))
        self._tasks.append(asyncio.create_task(self._replay_loop()))
        if self.spool.fsync == "interval":
            self._tasks.append(asyncio.create_task(self.spool.sync_loop()))

    @property
    def spooling(self) -> bool:
        return self.producer is None or self.degraded

    async def _connect(self, timeout: float = 10.0) -> bool:
        if self.producer is not None:
            return True
        # linger 0: the hits of a tick are one batch already (see submit), and the request
        # waits for the acknowledgement, so a linger would only add to every answer
        producer = broker.producer(self.bootstrap, self.idempotence, linger_ms=0)
        try:
            await asyncio.wait_for(producer.start(), timeout)
        except Exception as exc:
            log.warning("Kafka not reachable at %s (%s): spooling hits", self.bootstrap, exc)
            with contextlib.suppress(Exception):
                await producer.stop()
            return False
        self.producer = producer
        return True

    # --- the answer path ----------------------------------------------------------------
    def submit(self, hits: list[Hit], done: Callable[[bool], None]) -> None:
        """Queue hits for the next group commit; ``done(True)`` once they are durable
        (Kafka acknowledged or spooled), ``done(False)`` when they were dropped (spool
        full, or a commit that failed unexpectedly: logged).

        At most ``IN_FLIGHT`` commits are in flight; the hits that arrive meanwhile wait
        for the next, which takes them all: one Kafka batch per partition and one acknowledgement
        round trip for every request of that interval, instead of a record and a wait of
        its own each.  (A callback, not a future: the pixel's fast path answers from it
        directly, without a task or a future per request.)
        """
        for h in hits:
            self._pending.append((h.to_json(), h.key, h.hit_id))
        loop = asyncio.get_running_loop()
        if not self._waiters:
            self._first_at = loop.time()
        self._waiters.append(done)
        if len(self._commits) < IN_FLIGHT and not self._flush_scheduled:
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """The next commit: once the oldest waiting hit has lingered ``linger_s`` (or at
        once when enough wait), so that a commit carries many hits, not one or two."""
        self._flush_scheduled = True
        wait = self._first_at + self.linger_s - loop.time()
        if wait <= 0 or len(self._pending) >= LINGER_ENOUGH:
            loop.call_soon(self._commit_pending)
        else:
            loop.call_later(wait, self._commit_pending)

    async def put(self, hits: list[Hit]) -> bool:
        """Durably accept hits (Kafka or spool) within the bound; False: dropped, spool full."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def answer(ok: bool) -> None:
            if not fut.done():  # done: the request was cancelled
                fut.set_result(ok)

        self.submit(hits, answer)
        return await fut

    def _commit_pending(self) -> None:
        self._flush_scheduled = False
        records, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        if not waiters or len(self._commits) >= IN_FLIGHT:
            self._pending, self._waiters = records + self._pending, waiters + self._waiters
            return
        task = asyncio.get_running_loop().create_task(self._commit(records, waiters))
        self._commits.add(task)
        task.add_done_callback(self._committed)

    def _committed(self, task: asyncio.Task[None]) -> None:
        self._commits.discard(task)
        if self._waiters and not self._flush_scheduled:  # what arrived during the commits
            self._schedule(asyncio.get_running_loop())

    async def _commit(
        self, records: list[tuple[bytes, bytes, str]], waiters: list[Callable[[bool], None]]
    ) -> None:
        ok = False
        try:
            ok = await self._put_records(records)
        except Exception:  # a bug, not Kafka (that spools): the requests hear "not accepted"
            log.exception("group commit of %d hits failed", len(records))
        finally:  # cancelled too (shutdown): nobody waits for ever
            for done in waiters:
                try:
                    done(ok)
                except Exception:
                    log.exception("answering a request after its commit failed")

    async def _put_records(self, records: list[tuple[bytes, bytes, str]]) -> bool:
        METRICS.observe("collector_commit_hits", len(records))
        if not self.spooling:
            left = await self._produce(records)
            if not left:
                METRICS.inc("hits_produced_total", len(records))
                return True
            METRICS.inc("hits_produced_total", len(records) - len(left))
            records = left
        return await self._spool(records)

    async def _produce(
        self, records: list[tuple[bytes, bytes, str]]
    ) -> list[tuple[bytes, bytes, str]]:
        """Send within the bound, one batch per partition; returns the records not
        acknowledged (to spool)."""
        assert self.producer is not None
        producer = self.producer
        sent: list[tuple[list[int], asyncio.Future[Any]]] = []
        reason = ""
        try:
            async with asyncio.timeout(self.timeout):
                parts = sorted(await producer.partitions_for(self.topic))
                by_part: dict[int, list[int]] = {}
                for i, p in enumerate(partitions_for([rec[1] for rec in records], len(parts))):
                    by_part.setdefault(parts[p], []).append(i)
                for part, idx in by_part.items():
                    batch, first = producer.create_batch(), 0
                    for j, i in enumerate(idx):
                        value, key, _ = records[i]
                        if batch.append(key=key, value=value, timestamp=None) is None:  # full
                            sent.append(
                                (
                                    idx[first:j],
                                    await producer.send_batch(batch, self.topic, partition=part),
                                )
                            )
                            batch, first = producer.create_batch(), j
                            batch.append(
                                key=key, value=value, timestamp=None
                            )  # an empty batch takes any record
                    sent.append(
                        (idx[first:], await producer.send_batch(batch, self.topic, partition=part))
                    )
                if sent:
                    await asyncio.wait([f for _, f in sent])
        except TimeoutError:
            reason = "timeout"
        except Exception as exc:  # broker errors while queueing
            reason = type(exc).__name__
        acked: set[int] = set()
        for idx, fut in sent:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                acked.update(idx)
            elif not fut.done():
                for i in idx:
                    self._late[records[i][2]] = fut  # may still be delivered: replay will check
            elif not reason:
                error = fut.exception() if not fut.cancelled() else None
                reason = type(error).__name__ if error else "cancelled"
        left = [rec for i, rec in enumerate(records) if i not in acked]
        if left:
            METRICS.inc("produce_errors_total", reason=reason or "unknown")
            if not self.degraded:
                log.warning("Kafka produce failed (%s): spooling hits until it answers", reason)
            self.degraded = True
        return left

    async def _spool(self, records: list[tuple[bytes, bytes, str]]) -> bool:
        lines = [v for v, _, _ in records]
        size = sum(len(v) + 1 for v in lines)
        if not self.spool.has_room(size):
            METRICS.inc("hits_dropped_total", len(records), reason="spool_full")
            METRICS.set("spool_full", 1)
            now = time.monotonic()
            if now - self._last_alarm > ALARM_EVERY_S:
                self._last_alarm = now
                log.error(
                    "ALARM: spool full (%d bytes >= spool_max_bytes %d) in %s: dropping hits "
                    "until Kafka is back",
                    self.spool.bytes,
                    self.spool.max_bytes,
                    self.spool.dir,
                )
            return False
        seq = self.spool.append(lines)
        METRICS.inc("hits_spooled_total", len(records))
        METRICS.set("spool_bytes", self.spool.bytes)
        await self.spool.sync(seq)
        return True

    # --- replay ---------------------------------------------------------------------------
    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.replay()
            except Exception as exc:  # keep the loop alive; the files stay
                log.warning("spool replay failed, will retry: %s", exc)

    async def replay(self) -> int:
        """Produce spooled hits in order; a file goes once all of it is acknowledged."""
        async with self._lock:
            if not await self._connect():
                return 0
            if not self.degraded and not self.spool.writing and not self.spool.files():
                return 0  # nothing spooled (the listing also finds a dead sibling's files)
            # a restarted broker may have lost the topic (Tansu memory storage), and Tansu was
            # seen acknowledging records sent to a topic it does not have: make sure it exists
            await broker.ensure_topic(self.bootstrap, self.topic, self.partitions, timeout=5)
            await self._settle_late()
            await self.spool.close_current()
            sent = await self._replay_files(probe=True)
            if self.spool.writing and self.degraded:
                # Traffic kept coming to the spool during the replay: switch back to direct
                # produce now, then replay what was spooled meanwhile (about one replay's
                # worth, interleaving with the first direct hits; the sessionizer orders a
                # session's hits by time), or the collector would spool for ever under load.
                self.degraded = False
                await self.spool.close_current()
                sent += await self._replay_files(probe=False)
            if not self.spool.writing and not self.spool.files():
                self.degraded = False
                METRICS.set("spool_full", 0)
                log.info("spool drained: %d hits replayed; producing directly again", sent)
            return sent

    async def _replay_files(self, probe: bool) -> int:
        sent = 0
        for path in self.spool.files():
            with self.spool.claim(path) as fd:
                if fd is None:
                    continue  # another live process writes it
                start, data = read_from(fd, path)
                sent += await self._replay_file(path, start, data, probe)
                probe = False
                self.spool.finish(path)
                METRICS.set("spool_bytes", self.spool.bytes)
        return sent

    async def _replay_file(self, path: Path, start: int, data: bytes, probe: bool) -> int:
        assert self.producer is not None
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        sent = 0
        offset = start
        i = 0
        while i < len(lines):
            n = 1 if probe else CHUNK
            probe = False
            chunk = lines[i : i + n]
            futures: list[tuple[str, asyncio.Future[Any]]] = []
            try:
                for line in chunk:
                    item = self._decode(line)
                    if item is not None:
                        futures.append(
                            (item[1], await self.producer.send(self.topic, line, key=item[0]))
                        )
                if futures:
                    await asyncio.wait_for(asyncio.gather(*(f for _, f in futures)), 30)
            except BaseException:
                # part of the chunk may be in Kafka already: remember those (and the ones
                # still in flight) so that the next attempt does not send them twice
                for hit_id, fut in futures:
                    if not fut.done() or (not fut.cancelled() and fut.exception() is None):
                        self._late[hit_id] = fut
                raise
            advanced = sum(len(x) + 1 for x in chunk)
            offset += advanced
            self.spool.mark(path, offset, advanced)
            METRICS.inc("hits_replayed_total", len(futures))
            sent += len(futures)
            i += n
        return sent

    def _decode(self, line: bytes) -> tuple[bytes, str] | None:
        """(Kafka key, hit id) of a spooled line, or None to skip it (corrupt, or delivered)."""
        try:
            doc = orjson.loads(line)
            key = Hit.from_dict(doc).key
        except (ValueError, TypeError):
            METRICS.inc("spool_corrupt_lines_total")
            return None
        if doc["hit_id"] in self._late:
            self._late.pop(doc["hit_id"])
            METRICS.inc("hits_delivered_late_total")
            return None  # an earlier send of it was acknowledged after all (see _settle_late)
        return key, doc["hit_id"]

    async def _settle_late(self) -> None:
        """Wait for timed-out sends to end; forget those that failed (replay sends them)."""
        if not self._late:
            return
        futures = list(self._late.values())
        await asyncio.wait(futures, timeout=30)
        for hit_id, fut in list(self._late.items()):
            if not fut.done() or fut.cancelled() or fut.exception() is not None:
                del self._late[hit_id]

    async def stop(self, timeout: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while self._commits or self._waiters:  # waiting requests get their answer first
            if self._waiters and len(self._commits) < IN_FLIGHT:
                self._commit_pending()
            left = deadline - asyncio.get_running_loop().time()
            if not self._commits or left <= 0:
                break
            await asyncio.wait(
                set(self._commits), timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.replay(), timeout)
        await self.spool.close_current()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), timeout)
