"""Where accepted hits go: Kafka, or the local spool when Kafka is slow or away.

``put(hit)`` returns only when the hit is acknowledged by Kafka (acks=all) or
appended to the spool on disk, so an answered request is never lost.  A
background task replays spooled hits in order once Kafka answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from clickstream import broker
from clickstream.hit import Hit
from clickstream.metrics import METRICS

log = logging.getLogger("clickstream.collector")


class Spool:
    """Append-only JSON-lines files; replayed oldest first, deleted once produced."""

    def __init__(self, directory: Path, fsync: bool = True):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._file: int | None = None
        self._name: Path | None = None
        self.pending = any(self.dir.glob("spool-*.jsonl"))  # hits wait on disk

    def append(self, records: list[bytes]) -> None:
        if self._file is None:
            self._name = self.dir / f"spool-{time.time_ns():020d}-{os.getpid()}.jsonl"
            self._file = os.open(self._name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.pending = True
        os.write(self._file, b"".join(r + b"\n" for r in records))
        if self.fsync:
            os.fsync(self._file)
        METRICS.inc("hits_spooled_total", len(records))

    def rotate(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("spool-*.jsonl"))

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob("spool-*.jsonl"))


class HitSink:
    def __init__(self, bootstrap: str, topic: str, idempotence: bool, spool_dir: Path, timeout_s: float):
        self.bootstrap = bootstrap
        self.topic = topic
        self.idempotence = idempotence
        self.timeout = timeout_s
        self.spool = Spool(spool_dir)
        self.producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._connect()
        self._tasks.append(asyncio.create_task(self._replay_loop()))

    async def _connect(self) -> bool:
        if self.producer is not None:
            return True
        producer = broker.producer(self.bootstrap, self.idempotence)
        try:
            await asyncio.wait_for(producer.start(), 10)
        except Exception as exc:
            log.warning("Kafka not reachable at %s (%s): spooling hits", self.bootstrap, exc)
            with contextlib.suppress(Exception):
                await producer.stop()
            return False
        self.producer = producer
        return True

    async def put(self, hits: list[Hit]) -> None:
        """Durably accept hits: acknowledged by Kafka, or else on the spool."""
        records = [(h.to_json(), h.key) for h in hits]
        if self.producer is not None and not self.spool.pending:
            try:
                futures = [await self.producer.send(self.topic, v, key=k) for v, k in records]
                await asyncio.wait_for(asyncio.gather(*futures), self.timeout)
                METRICS.inc("hits_produced_total", len(records))
                return
            except Exception as exc:
                METRICS.inc("produce_errors_total")
                log.warning("produce failed (%s): spooling %d hits", type(exc).__name__, len(records))
        # Kafka away, slow, or older hits still spooled (keep the order): spool these too.
        self.spool.append([v for v, _ in records])

    async def _replay_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.replay()
            except Exception as exc:  # keep the loop alive; the files stay
                log.warning("spool replay failed: %s", exc)

    async def replay(self) -> int:
        """Produce spooled hits in order; delete each file once all of it is acknowledged."""
        async with self._lock:
            if not self.spool.pending:
                return 0
            if not await self._connect():
                return 0
            assert self.producer is not None
            self.spool.rotate()
            sent = 0
            for path in self.spool.files():
                lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
                futures = []
                for line in lines:
                    try:
                        key = Hit.from_json(line).key
                    except ValueError:
                        METRICS.inc("spool_corrupt_lines_total")
                        continue
                    futures.append(await self.producer.send(self.topic, line, key=key))
                await asyncio.wait_for(asyncio.gather(*futures), max(self.timeout, 10))
                path.unlink()
                sent += len(futures)
                METRICS.inc("hits_replayed_total", len(futures))
            self.spool.pending = bool(self.spool.files())
            return sent

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):
            await self.replay()
        self.spool.rotate()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
