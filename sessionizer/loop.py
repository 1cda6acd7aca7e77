"""The sessionizer's I/O shell: Kafka records in, rows out, offsets committed.

``getmany`` → decode → enrich → fold → (every flush interval) write → commit.
Offsets are committed per partition only up to the oldest hit of a session that
is still open, so a crash or rebalance replays exactly what is not final yet;
deterministic ids and ReplacingMergeTree make the replay idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from clickhouse_connect.driver.client import Client

from clickstream import broker, warehouse
from clickstream.hit import Hit, HitDecodeError
from clickstream.metrics import METRICS
from clickstream.settings import Settings
from sessionizer import sessions
from sessionizer.enrich import Context, enrich
from sessionizer.flags import Rules, SessionResult
from sessionizer.writer import Writer

log = logging.getLogger("clickstream.sessionizer")


def rules_for(settings: Settings) -> Callable[[str], Rules]:
    cache: dict[str, Rules] = {}

    def rules(site: str) -> Rules:
        r = cache.get(site)
        if r is None:
            s = settings.for_site(site)
            r = cache[site] = Rules(
                timeout_ms=int(s.session_timeout_min * 60_000), quick_back_ms=int(s.quick_back_s * 1000)
            )
        return r

    return rules


def context_for(settings: Settings) -> Callable[[str], Context]:
    cache: dict[str, Context] = {}

    def ctx(site: str) -> Context:
        c = cache.get(site)
        if c is None:
            c = cache[site] = Context(search_params=settings.for_site(site).search_param_set)
        return c

    return ctx


_ONLY_NOW = 2**62  # "valid after" of a count that holds for the current batch only


class History:
    """Per visitor: sessions already closed and known CRM id, cached; ClickHouse on first sight.

    Each cached count holds for hits after a time (the last session start it knows of); an
    older hit (a re-import or re-send of old hits) is counted again from ClickHouse, so a
    replayed session never counts itself, or the sessions after it, as its history.
    """

    def __init__(self, client: Client, database: str, size: int = 200_000):
        self.client = client
        self.db = database
        self.cache: OrderedDict[tuple[str, str], tuple[int, str, int]] = OrderedDict()
        self.size = size

    def prefetch(self, hits: list[Hit]) -> None:
        """One query for all visitors of a batch not seen before (or seen only later)."""
        earliest: dict[tuple[str, str], int] = {}
        for h in hits:
            key = (h.site, h.visitor_id)
            earliest[key] = min(earliest.get(key, h.ts), h.ts)
        first_ts = {}
        for key, ts in earliest.items():
            cached = self.cache.get(key)
            if cached is None or ts <= cached[2]:
                first_ts[key] = ts
        if not first_ts:
            return
        found: dict[tuple[str, str], tuple[int, str, int]] = {}
        keys = list(first_ts)
        for i in range(0, len(keys), 2000):
            chunk = keys[i : i + 2000]
            rows = warehouse.read_query(
                self.client,
                f"SELECT site, visitor_id, groupArray(toUnixTimestamp64Milli(start_ts)), "
                f"argMax(crm_id, end_ts) FROM {self.db}.sessions FINAL "
                f"WHERE (site, visitor_id) IN %(keys)s GROUP BY site, visitor_id",
                parameters={"keys": tuple(chunk)},
                comment="sessionizer:history",
            ).rows
            for site, vid, starts, crm in rows:
                # only sessions before this visitor's first hit here: a replayed open
                # session already written provisionally must not count as its own history
                first = first_ts[(site, vid)]
                before = sum(1 for t in starts if t < first)
                # a count with later sessions stored is good for this batch only
                valid_after = max(starts, default=-1) if before == len(starts) else _ONLY_NOW
                found[(site, vid)] = (before, crm or "", valid_after)
        for key in keys:
            self._put(key, found.get(key, (0, "", -1)))

    def _put(self, key: tuple[str, str], value: tuple[int, str, int]) -> None:
        self.cache[key] = value
        self.cache.move_to_end(key)
        while len(self.cache) > self.size:
            self.cache.popitem(last=False)

    def __call__(self, site: str, vid: str) -> tuple[int, str]:
        count, crm, _ = self.cache.get((site, vid), (0, "", -1))
        return count, crm

    def closed(self, results: list[SessionResult]) -> None:
        for r in results:
            s = r.session
            start = r.hits[0].hit.ts if r.hits else -1
            self._put((s["site"], s["visitor_id"]), (s["session_number"], s["crm_id"], start))


class Sessionizer:
    def __init__(self, settings: Settings, client: Client):
        self.settings = settings
        self.client = client
        self.writer = Writer(client, settings.database)
        self.history = History(client, settings.database)
        self.state = sessions.State(rules=rules_for(settings), history=self.history)
        self.ctx = context_for(settings)
        self.consumed: dict[int, int] = {}  # partition -> next offset to read
        self.clock: dict[int, int] = {}  # partition -> received-time clock
        self.pending: list[SessionResult] = []
        self.flush_requested = asyncio.Event()
        self.flushed = asyncio.Event()
        self.stop = asyncio.Event()
        self.consumer: Any = None
        self.running = False
        self.last_error = ""
        self.dead: list[tuple[bytes | None, bytes | None, str, int, int]] = []  # poison records
        self.dlq: Any = None  # producer of the dead-letter topic, started on first use

    # --- pure-ish steps -----------------------------------------------------------------
    def ingest(self, records: dict[TopicPartition, list[Any]]) -> None:
        self.fold_decoded(self.decode(records))

    def decode(self, records: dict[TopicPartition, list[Any]]) -> list[tuple[Hit, int, int]]:
        decoded: list[tuple[Hit, int, int]] = []
        for tp, msgs in records.items():
            for m in msgs:
                self.consumed[tp.partition] = m.offset + 1
                try:
                    hit = Hit.from_json(m.value)
                except HitDecodeError as exc:
                    reason = poison_reason(exc)
                    METRICS.inc("sessionizer_poison_records_total", reason=reason)
                    log.warning("poison record p%s@%s -> %s: %s", tp.partition, m.offset,
                                dlq_topic(self.settings), exc)
                    self.dead.append((m.key, m.value, f"{reason}: {exc}"[:500], tp.partition, m.offset))
                    continue
                decoded.append((hit, tp.partition, m.offset))
                self.clock[tp.partition] = max(self.clock.get(tp.partition, 0), hit.received)
        return decoded

    def fold_decoded(self, decoded: list[tuple[Hit, int, int]]) -> None:
        if not decoded:
            return
        self.history.prefetch([d[0] for d in decoded])
        for hit, part, off in decoded:
            e = enrich(hit, self.ctx(hit.site), part, off)
            _, closed = sessions.fold(self.state, e)
            self._closed(closed)
        METRICS.inc("sessionizer_hits_total", len(decoded))

    def _closed(self, results: list[SessionResult]) -> None:
        if results:
            self.pending.extend(results)
            self.history.closed(results)

    def partition_clock(self, caught_up: set[int]) -> Callable[[sessions.Visitor], int]:
        now = int(time.time() * 1000)

        def clock(v: sessions.Visitor) -> int:
            part = v.hits[-1].partition if v.hits else -1
            c = self.clock.get(part, 0)
            return max(c, now) if part in caught_up or part < 0 else c

        return clock

    # --- I/O --------------------------------------------------------------------------
    async def write_and_commit(self, close_everything: bool = False) -> None:
        if close_everything:
            self._closed(sessions.close_all(self.state))
        else:
            self._closed(sessions.close_idle(self.state, self.partition_clock(self._caught_up())))
        results = self.pending + sessions.take_dirty(self.state)
        if results:
            started = time.monotonic()
            await self._write_retrying(results)
            METRICS.observe("sessionizer_write_seconds", time.monotonic() - started)
            METRICS.inc("sessions_written_total", sum(1 for r in results if r.closed))
        self.pending = []
        METRICS.set("sessionizer_open_sessions", sum(1 for v in self.state.visitors.values() if v.hits))
        METRICS.set("sessionizer_consumer_lag", self._lag())
        await self._commit()

    def _lag(self) -> int:
        lag = 0
        for tp in self.consumer.assignment() if self.consumer is not None else ():
            hw = self.consumer.highwater(tp)
            if hw is not None:
                lag += max(0, hw - self.consumed.get(tp.partition, hw))
        return lag

    async def _write_retrying(self, results: list[SessionResult]) -> None:
        delay = 0.2
        while True:
            try:
                await asyncio.to_thread(self.writer.write, results)
                self.last_error = ""
                return
            except Exception as exc:  # ClickHouse down: keep everything, retry, commit nothing
                self.last_error = str(exc)[:300]
                METRICS.inc("sessionizer_write_errors_total")
                log.warning("write to ClickHouse failed, retrying in %.1fs: %s", delay, exc)
                if self.stop.is_set() and delay > 5:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _prefetch_retrying(self, decoded: list[tuple[Hit, int, int]]) -> None:
        """Visitors' history from ClickHouse; while it is down, wait with backoff (the
        decoded hits stay in hand and nothing is committed, so nothing is lost)."""
        if not decoded:
            return
        delay = 0.2
        while True:
            try:
                await asyncio.to_thread(self.history.prefetch, [d[0] for d in decoded])
                return
            except Exception as exc:
                self.last_error = str(exc)[:300]
                METRICS.inc("sessionizer_read_errors_total")
                log.warning("history read from ClickHouse failed, retrying in %.1fs: %s", delay, exc)
                if self.stop.is_set() and delay > 5:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _caught_up(self) -> set[int]:
        out = set()
        if self.consumer is None:
            return out
        for tp in self.consumer.assignment():
            hw = self.consumer.highwater(tp)
            if hw is not None and self.consumed.get(tp.partition, 0) >= hw:
                out.add(tp.partition)
        return out

    async def _commit(self) -> None:
        if self.consumer is None:
            return
        open_min = sessions.min_open_offsets(self.state)
        offsets = {}
        for tp in self.consumer.assignment():
            if tp.partition not in self.consumed:
                continue
            upto = min(self.consumed[tp.partition], open_min.get(tp.partition, 1 << 62))
            offsets[tp] = OffsetAndMetadata(upto, "")
        if offsets:
            await self.consumer.commit(offsets)

    async def run(self, bootstrap: str) -> None:
        s = self.settings
        self.consumer = broker.consumer(bootstrap, s.consumer_group)
        self.consumer.subscribe([s.topic], listener=_Rebalance(self))
        await self.consumer.start()
        self.running = True
        last_flush = time.monotonic()
        try:
            while not self.stop.is_set():
                records = await self.consumer.getmany(timeout_ms=100, max_records=5000)
                decoded = self.decode(records)
                await self._prefetch_retrying(decoded)
                self.fold_decoded(decoded)
                await self.dead_letter(bootstrap)
                flush_now = self.flush_requested.is_set()
                if flush_now or time.monotonic() - last_flush >= s.flush_interval_s:
                    if flush_now:
                        self.flush_requested.clear()
                    await self.write_and_commit(close_everything=flush_now)
                    if flush_now:
                        self.flushed.set()
                    last_flush = time.monotonic()
        finally:
            try:
                # drain what is already fetched, then close every session and commit
                records = await self.consumer.getmany(timeout_ms=0)
                self.ingest(records)
                await self.write_and_commit(close_everything=True)
            finally:
                self.running = False
                await self.consumer.stop()
                if self.dlq is not None:
                    await self.dlq.stop()

    async def dead_letter(self, bootstrap: str) -> None:
        """Send poison records to the dead-letter topic, the reason in a header (best effort:
        a record that cannot be sent there is counted and logged, never blocks the stream)."""
        if not self.dead:
            return
        dead, self.dead = self.dead, []
        topic = dlq_topic(self.settings)
        try:
            if self.dlq is None:
                await broker.ensure_topic(bootstrap, topic, 1, timeout=10)
                producer = broker.producer(bootstrap, self.settings.idempotence,
                                           client_id="clickstream-sessionizer-dlq")
                try:
                    await producer.start()
                except Exception:
                    await producer.stop()
                    raise
                self.dlq = producer
            futures = [
                await self.dlq.send(topic, value, key=key, headers=[
                    ("reason", reason.encode()),
                    ("origin", f"{self.settings.topic}/{part}@{off}".encode()),
                ])
                for key, value, reason, part, off in dead
            ]
            await asyncio.wait_for(asyncio.gather(*futures), 30)
        except Exception as exc:
            METRICS.inc("sessionizer_dead_letter_errors_total", len(dead))
            log.error("could not write %d poison records to %s: %s", len(dead), topic, exc)

    async def drain(self) -> None:
        """Wait until every record in the topic at this moment has been consumed."""
        while self.consumer is None or not self.consumer.assignment():
            await asyncio.sleep(0.05)
        tps = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(tps)
        for tp, end in ends.items():
            while tp in self.consumer.assignment() and await self.consumer.position(tp) < end:
                await asyncio.sleep(0.05)

    async def flush(self, timeout: float = 30.0) -> None:
        """Consume everything already in the topic, close all open sessions, write them."""
        await asyncio.wait_for(self.drain(), timeout)
        self.flushed.clear()
        self.flush_requested.set()
        await asyncio.wait_for(self.flushed.wait(), timeout)


def dlq_topic(settings: Settings) -> str:
    return settings.topic + ".dlq"


def poison_reason(exc: HitDecodeError) -> str:
    text = str(exc)
    if text.startswith("not JSON"):
        return "not_json"
    if text.startswith("unsupported version"):
        return "bad_version"
    if text.startswith("not an object"):
        return "not_object"
    return "invalid_hit"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: Sessionizer):
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Write what is open provisionally and commit only what is final: the new owner
        # of these partitions replays the open sessions from their first hit.
        if revoked:
            await self.owner.write_and_commit()
            lost = {tp.partition for tp in revoked}
            for key, v in list(self.owner.state.visitors.items()):
                if v.hits and v.hits[0].partition in lost:
                    del self.owner.state.visitors[key]
            for p in lost:
                self.owner.consumed.pop(p, None)
                self.owner.clock.pop(p, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
