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
from dataclasses import replace
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from clickhouse_connect.driver.client import Client

from clickstream import broker, erase, warehouse
from clickstream.hit import Hit, HitDecodeError
from clickstream.metrics import METRICS
from clickstream.settings import Settings
from sessionizer import customer, sessions, stored
from sessionizer.enrich import Context, GeoIP, enrich
from sessionizer.flags import SessionResult
from sessionizer.sessions import Known, Tombstone
from sessionizer.split import Rules, rules_from
from sessionizer.writer import Writer

log = logging.getLogger("clickstream.sessionizer")
COMMIT_TIMEOUT_S = 5.0  # longest an offset commit (or leaving the group) may wait on Kafka


def rules_for(settings: Settings) -> Callable[[str], Rules]:
    cache: dict[str, Rules] = {}

    def rules(site: str) -> Rules:
        r = cache.get(site)
        if r is None:
            r = cache[site] = rules_from(settings.for_site(site))
        return r

    return rules


def context_for(settings: Settings) -> Callable[[str], Context]:
    cache: dict[str, Context] = {}
    geo = GeoIP(settings.geoip_db) if settings.geoip_db else None

    def ctx(site: str) -> Context:
        c = cache.get(site)
        if c is None:
            s = settings.for_site(site)
            c = cache[site] = Context(search_params=s.search_param_set, geo=geo, bots=s.bots)
        return c

    return ctx


class History:
    """Per visitor: sessions stored, end of the latest, CRM link; cached, one batched
    ClickHouse lookup for the visitors of a batch not seen before (no per-hit query)."""

    def __init__(self, client: Client, database: str, size: int = 200_000):
        self.client = client
        self.db = database
        self.cache: OrderedDict[tuple[str, str], Known] = OrderedDict()
        self.size = size
        self.lookups = 0

    def prefetch(self, hits: list[Hit]) -> None:
        """One query per table for all visitors of a batch not in the cache."""
        keys = list(
            dict.fromkeys(
                (h.site, h.visitor_id) for h in hits if (h.site, h.visitor_id) not in self.cache
            )
        )
        if not keys:
            return
        self.lookups += 1
        found: dict[tuple[str, str], Known] = {}
        for i in range(0, len(keys), 2000):
            chunk = tuple(keys[i : i + 2000])
            rows = warehouse.read_query(
                self.client,
                f"SELECT site, visitor_id, count(), max(toUnixTimestamp64Milli(end_ts)) "
                f"FROM {self.db}.sessions FINAL WHERE (site, visitor_id) IN %(keys)s "
                "GROUP BY site, visitor_id",
                parameters={"keys": chunk},
                comment="sessionizer:history",
            ).rows
            for site, vid, n, last_end in rows:
                found[(site, vid)] = Known(sessions=int(n), last_end=int(last_end))
            links = warehouse.read_query(
                self.client,
                f"SELECT site, visitor_id, argMax(crm_id, last_ts), "
                f"toUnixTimestamp64Milli(min(first_ts)) FROM {self.db}.identities FINAL "
                "WHERE (site, visitor_id) IN %(keys)s GROUP BY site, visitor_id",
                parameters={"keys": chunk},
                comment="sessionizer:history-crm",
            ).rows
            for site, vid, crm, since in links:
                k = found.get((site, vid), Known())
                found[(site, vid)] = Known(k.sessions, k.last_end, crm, int(since))
        for key in keys:
            self._put(key, found.get(key, Known()))

    def _put(self, key: tuple[str, str], value: Known) -> None:
        self.cache[key] = value
        self.cache.move_to_end(key)
        while len(self.cache) > self.size:
            self.cache.popitem(last=False)

    def __call__(self, site: str, vid: str) -> Known:
        return self.cache.get((site, vid), Known())

    def closed(self, results: list[SessionResult]) -> None:
        for r in results:
            s = r.session
            key = (s["site"], s["visitor_id"])
            old = self.cache.get(key, Known())
            # results come in order per visitor (an amend renumbers all its sessions):
            # the last one tells how many sessions there are and where the latest ends
            crm = (s["crm_id"], 0) if s["crm_id"] != old.crm_id else (old.crm_id, old.crm_since)
            self._put(key, Known(s["session_number"], s["end_ts"], *crm))

    def clear(self) -> None:
        self.cache.clear()


class Sessionizer:
    def __init__(self, settings: Settings, client: Client):
        self.settings = settings
        self.client = client
        self.writer = Writer(client, settings.database)
        self.history = History(client, settings.database)
        rules = rules_for(settings)
        for site in ("", *sorted(settings.configured_sites)):  # bad per-site rules fail at start
            rules(site)
        self.state = sessions.State(rules=rules, history=self.history, amend_late=True)
        self.ctx = context_for(settings)
        self.consumed: dict[int, int] = {}  # partition -> next offset to read
        self.clock: dict[int, int] = {}  # partition -> received-time clock
        self.pending: list[SessionResult] = []
        self.rows_written: dict[tuple[str, str], tuple[Any, ...]] = {}  # hit -> row as written
        self.flush_requested = asyncio.Event()
        self.flushed = asyncio.Event()
        self.stop = asyncio.Event()
        self.consumer: Any = None
        self.running = False
        self.last_error = ""
        self.hits_folded = 0  # hits folded by this process (all written once a flush returns)
        self.dead: list[tuple[bytes | None, bytes | None, str, int, int]] = []  # poison records
        self.dlq: Any = None  # producer of the dead-letter topic, started on first use
        self.customer_cache: set[str] = set()  # open session ids returning via their customer
        self.erased_position = 0  # erasures of the writer's erased set already applied to memory
        self.started_ms = int(time.time() * 1000)

    # --- pure-ish steps -----------------------------------------------------------------
    def ingest(self, records: dict[TopicPartition, list[Any]]) -> None:
        """Decode, look history up, fold (all in this thread; the loop uses :meth:`aingest`)."""
        decoded = self.decode(records)
        self.history.prefetch([h for h, _, _ in decoded if h is not None])
        self.fold_decoded(decoded)

    async def aingest(self, records: dict[TopicPartition, list[Any]]) -> None:
        """The same, with the ClickHouse history lookup off the event loop."""
        decoded = self.decode(records)
        hits = [h for h, _, _ in decoded if h is not None]
        delay = 0.2
        while hits:  # ClickHouse down: keep the records in hand, retry, commit nothing
            try:
                await asyncio.to_thread(self.history.prefetch, hits)
                break
            except Exception as exc:
                self.last_error = str(exc)[:300]
                METRICS.inc("sessionizer_read_errors_total")
                log.warning("history read failed, retrying in %.1fs: %s", delay, exc)
                if self.stop.is_set() and delay > 5:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self.fold_decoded(decoded)

    def decode(self, records: dict[TopicPartition, list[Any]]) -> list[tuple[Hit | None, int, int]]:
        decoded: list[tuple[Hit | None, int, int]] = []
        for tp, msgs in records.items():
            for m in msgs:
                try:
                    hit: Hit | None = Hit.from_json(m.value)
                except HitDecodeError as exc:
                    reason = poison_reason(exc)
                    METRICS.inc("sessionizer_poison_records_total", reason=reason)
                    log.warning(
                        "poison record p%s@%s -> %s: %s",
                        tp.partition,
                        m.offset,
                        dlq_topic(self.settings),
                        exc,
                    )
                    self.dead.append(
                        (m.key, m.value, f"{reason}: {exc}"[:500], tp.partition, m.offset)
                    )
                    hit = None
                decoded.append((hit, tp.partition, m.offset))
        return decoded

    def fold_decoded(self, decoded: list[tuple[Hit | None, int, int]]) -> None:
        # a rebalance may have taken partitions away while the history was looked up:
        # their records are the new owner's (nothing of them is committed here)
        owned = (
            None if self.consumer is None else {tp.partition for tp in self.consumer.assignment()}
        )
        n = 0
        for hit, part, off in decoded:
            if owned is not None and part not in owned:
                continue
            self.consumed[part] = off + 1
            if hit is None:
                continue
            n += 1
            self.clock[part] = max(self.clock.get(part, 0), hit.received)
            e = enrich(hit, self.ctx(hit.site), part, off)
            if isinstance(e, str):
                METRICS.inc("sessionizer_dropped_total", reason=e)
                continue
            _, closed = sessions.fold(self.state, e)
            self._closed(closed)
        METRICS.inc("sessionizer_hits_total", n)
        self.hits_folded += n
        METRICS.set("sessionizer_sessions_capped", self.state.capped)

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
        """Write closed sessions, amend visitors hit by late hits, close what is idle,
        write open sessions provisionally, then commit what is final."""
        if self.state.amend:
            if self.pending:  # amend reads the warehouse: closed sessions go first
                await self._write_retrying(self._skip_unchanged(self.pending), [])
                self.pending = []
            await self._amend()
        try:  # the erased set is re-read (every few seconds) off the loop, then applied
            await asyncio.to_thread(self.writer.erased.learnt_since, self.erased_position)
            self.forget_erased_elsewhere()
        except Exception as exc:  # the next flush tries again; the writer still drops them
            log.warning("reading erasures failed: %s", str(exc)[:200])
        if close_everything:
            self._closed(sessions.close_all(self.state))
        else:
            self._closed(sessions.close_idle(self.state, self.partition_clock(self._caught_up())))
        results = self._skip_unchanged(self.pending + sessions.take_dirty(self.state))
        tombstones = sessions.take_tombstones(self.state)
        if results or tombstones:
            started = time.monotonic()
            await self._write_retrying(results, tombstones)
            METRICS.observe("sessionizer_write_seconds", time.monotonic() - started)
            METRICS.inc("sessions_written_total", sum(1 for r in results if r.closed))
        self.pending = []
        METRICS.set(
            "sessionizer_open_sessions", sum(1 for v in self.state.visitors.values() if v.hits)
        )
        METRICS.set("sessionizer_consumer_lag", self._lag())
        await self._commit()
        METRICS.set("sessionizer_hits_flushed", self.hits_folded)

    def _lag(self) -> int:
        lag = 0
        for tp in self.consumer.assignment() if self.consumer is not None else ():
            hw = self.consumer.highwater(tp)
            if hw is not None:
                lag += max(0, hw - self.consumed.get(tp.partition, hw))
        return lag

    def _skip_unchanged(self, results: list[SessionResult]) -> list[SessionResult]:
        """An open session is rewritten on every flush, but most of its hit rows are as
        written last time: mark those so only changed hit rows are inserted again."""
        out = []
        for r in results:
            unchanged = set()
            for i, (e, f) in enumerate(zip(r.hits, r.flags, strict=True)):
                key = (e.hit.site, e.hit.hit_id)
                sig = (
                    r.session_id,
                    f.seq,
                    f.prev_page,
                    f.next_page,
                    f.is_dead_end_search,
                    f.search_result_opened,
                    f.is_pogo_stick,
                    f.is_back_loop,
                    f.is_quick_back,
                    f.crm_id,
                )
                if self.rows_written.get(key) == sig:
                    unchanged.add(i)
                if r.closed:
                    self.rows_written.pop(key, None)
                else:
                    self.rows_written[key] = sig
            out.append(replace(r, unchanged=frozenset(unchanged)) if unchanged else r)
        return out

    async def _amend(self) -> None:
        """Load the stored hits and sessions of visitors with late hits; re-split them."""
        keys = sorted(self.state.amend)

        def load() -> tuple[dict[Any, Any], dict[Any, Any]]:
            db = self.settings.database
            return (
                stored.visitor_hits(self.client, db, keys, self.ctx),
                stored.visitor_sessions(self.client, db, keys),
            )

        delay = 0.2
        while True:
            try:
                hits, known = await asyncio.to_thread(load)
                break
            except Exception as exc:
                self.last_error = str(exc)[:300]
                METRICS.inc("sessionizer_read_errors_total")
                log.warning("amend: reading ClickHouse failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        for key in keys:
            self._closed(sessions.amend(self.state, key, hits[key], known[key]))
        METRICS.inc("sessionizer_amended_visitors_total", len(keys))

    async def _write_retrying(
        self, results: list[SessionResult], tombstones: list[Tombstone]
    ) -> None:
        delay = 0.2
        while True:
            try:
                await asyncio.to_thread(self._write, results, tombstones)
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

    def relink(self, site: str, vid: str, crm_id: str) -> None:
        """``POST /api/identify`` linked ``vid`` to ``crm_id``: its open session (if any) and
        the later ones carry it, as after a hit with ``uid`` (no stale cached history)."""
        key = (site, vid)
        self.history.cache.pop(key, None)
        v = self.state.visitors.get(key)
        if v is not None:
            # from now, and from the start of the session open in memory (whatever its
            # event times); not 0: an amend would put the id on every earlier session
            since = int(time.time() * 1000)
            if v.hits:
                since = min(since, v.hits[0].hit.ts)
            v.crm_id, v.crm_since = crm_id, since
            v.known_crm = (crm_id, since)
            if v.hits:
                self.state.dirty.add(key)

    def forget_erased_elsewhere(self) -> None:
        """Forget the visitors in memory that an erase in another process (a dashboard, the
        CLI against the warehouse) erased: the erased set is re-read every few seconds."""
        learnt, self.erased_position = self.writer.erased.learnt_since(self.erased_position)
        # erasures from before this process started are in the warehouse it read already
        at = {h: when for h, when in learnt if when >= self.started_ms}
        if not at:
            return
        keys = set(self.state.visitors) | set(self.history.cache)
        for site, vid in keys:
            when = at.get(erase.id_hash(site, "visitor", vid))
            if when is not None:
                self.forget(site, [vid], when)

    def forget(self, site: str, visitor_ids: list[str], erased_ms: int) -> None:
        """``POST /api/erase`` erased these visitors: their cached history and the hits of
        their open sessions from before ``erased_ms`` go, so a later visit with the same
        cookie is a new visitor's first session (as after a restart), not one numbered on
        from the erased sessions, and hits after the erasure are not dropped with them."""
        for vid in visitor_ids:
            key = (site, vid)
            self.history.cache.pop(key, None)
            self._closed(sessions.forget_erased(self.state, key, erased_ms))

    def _write(self, results: list[SessionResult], tombstones: list[Tombstone]) -> None:
        db = self.settings.database
        settle = customer.mark_returning(self.client, db, results, self.customer_cache)
        self.writer.write(results, tombstones)
        customer.settle(self.client, db, settle | self.writer.links_first)

    def _caught_up(self) -> set[int]:
        out: set[int] = set()
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
        if not offsets:
            return
        try:  # aiokafka waits for a coordinator forever: a broker that is gone must not
            # stop the loop (nor a shutdown); what is not committed is replayed, idempotently
            await asyncio.wait_for(self.consumer.commit(offsets), COMMIT_TIMEOUT_S)
        except Exception as exc:
            self.last_error = f"offset commit failed: {str(exc)[:200] or type(exc).__name__}"
            METRICS.inc("sessionizer_commit_errors_total")
            log.warning(
                "%s (the rows are written; the offsets are committed next time)", self.last_error
            )
        else:
            if self.last_error.startswith("offset commit failed"):
                self.last_error = ""

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
                await self.aingest(records)
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
                try:  # leaving the group needs the broker
                    await asyncio.wait_for(self.consumer.stop(), COMMIT_TIMEOUT_S)
                except (
                    Exception,
                    asyncio.CancelledError,
                ) as exc:  # aiokafka's fetcher lets one out
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
                    log.warning(
                        "consumer did not stop cleanly: %s", str(exc)[:200] or type(exc).__name__
                    )
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
                producer = broker.producer(
                    bootstrap, self.settings.idempotence, client_id="clickstream-sessionizer-dlq"
                )
                try:
                    await producer.start()
                except Exception:
                    await producer.stop()
                    raise
                self.dlq = producer
            futures = [
                await self.dlq.send(
                    topic,
                    value,
                    key=key,
                    headers=[
                        ("reason", reason.encode()),
                        ("origin", f"{self.settings.topic}/{part}@{off}".encode()),
                    ],
                )
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


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: Sessionizer):
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Write what is open provisionally and commit only what is final: the new owner
        # of these partitions replays the open sessions from their first hit.
        if revoked:
            await self.owner.write_and_commit()
            lost = {tp.partition for tp in revoked}
            for key, v in list(self.owner.state.visitors.items()):
                parts = {e.partition for e in (*v.hits, *v.late)}
                if parts & lost or not parts:
                    del self.owner.state.visitors[key]
                    self.owner.state.amend.discard(key)
                    self.owner.state.dirty.discard(key)
            for p in lost:
                self.owner.consumed.pop(p, None)
                self.owner.clock.pop(p, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # visitors of newly assigned partitions may have sessions written by another
        # process meanwhile: forget cached history, look it up again on first sight
        self.owner.history.clear()
        self.owner.rows_written.clear()
        consumer = self.owner.consumer
        METRICS.set(
            "sessionizer_assigned_partitions", len(consumer.assignment()) if consumer else 0
        )


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
