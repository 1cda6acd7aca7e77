"""Helpers of the delivery tests: a deterministic stream of hits and sessionizer
processes (`clickstream sessionizer`) run as subprocesses against real Tansu + chDB."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import orjson

from clickstream import broker
from clickstream.hit import Hit

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6


def partition_of(vid: str) -> int:
    return zlib.crc32(vid.encode()) % PARTITIONS


def stream(
    seed: int, visitors: int, anchors: bool, late: int = 12
) -> tuple[list[tuple[int, Hit]], list[tuple[int, Hit]]]:
    """(partition, hit) pairs in two phases, event times over 4 h, received ≈ now.

    Visitors have 1-3 sessions of 2-6 hits (event-time gaps of 35-90 min between
    sessions), searches, back-loops and campaigns; ``late`` hits are held back to the
    end of the second phase (late hits).  ``anchors``: one visitor per partition whose session
    spans the whole stream and is first in its partition, so nothing is committed
    before the end (see test_two_processes_one_killed)."""
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    base = now - 4 * 3600_000
    hits: list[tuple[int, Hit]] = []
    n = 0

    def add(vid: str, ts: int, path: str, **kw: Any) -> None:
        nonlocal n
        n += 1
        part = int(vid[6:]) if vid.startswith("anchor") else partition_of(vid)
        hits.append(
            (
                part,
                Hit(
                    site="s1",
                    visitor_id=vid,
                    hit_id=f"{vid}-{n:05d}",
                    ts=ts,
                    received=0,
                    url="https://ex.com" + path,
                    **kw,
                ),
            )
        )

    for v in range(visitors):
        vid = f"visitor{v:04d}"
        ts = base + rnd.randrange(0, 3600_000)
        for _ in range(rnd.randint(1, 3)):
            utm = rnd.choice([("", "", "")] * 4 + [("google", "cpc", "x"), ("news", "email", "y")])
            for i in range(rnd.randint(2, 6)):
                path = rnd.choice(["/", "/a", "/b", "/c", "/s?q=shoes", "/s?q=hats"])
                add(
                    vid,
                    ts,
                    path,
                    search_results=rnd.choice([None, 0, 3]) if "?q=" in path else None,
                    utm_source=utm[0] if i == 0 else "",
                    utm_medium=utm[1] if i == 0 else "",
                    utm_campaign=utm[2] if i == 0 else "",
                    nav=rnd.choice(["", "navigate", "back_forward"]),
                    crm_id="C" + vid[-3:] if rnd.random() < 0.05 else "",
                    props={"revenue": "9.5"} if rnd.random() < 0.05 else {},
                )
                ts += rnd.randrange(5_000, 120_000)
            ts += rnd.randrange(35 * 60_000, 90 * 60_000)
    hits.sort(key=lambda x: x[1].ts)
    if anchors:
        for p in range(PARTITIONS):
            for k in range(13):
                add(f"anchor{p}", base - 60_000 + k * 20 * 60_000, f"/anchor{k % 2}")
        hits.sort(key=lambda x: (not x[1].visitor_id.startswith("anchor"), x[1].ts))
    # late hits: a few early hits of visitors move to the end of the stream
    first = 13 * PARTITIONS if anchors else 0
    late_idx = set(rnd.sample(range(first, first + (len(hits) - first) // 4), late))
    on_time = [h for i, h in enumerate(hits) if i not in late_idx]
    late = [h for i, h in enumerate(hits) if i in late_idx]
    ordered = on_time + late
    for i, (_, h) in enumerate(ordered):
        h.received = now - 10 * 60_000 + i * 10
    half = len(on_time) // 2
    return ordered[:half], ordered[half:]


async def produce(bootstrap: str, topic: str, hits: list[tuple[int, Hit]]) -> None:
    prod = broker.producer(bootstrap, idempotence=False)
    await prod.start()
    try:
        for part, h in hits:
            await prod.send(topic, h.to_json(), key=h.key, partition=part)
        await prod.flush()
    finally:
        await prod.stop()


STARTED: list[Proc] = []  # every process a test started, killed after it (even on failure)


def kill_leftovers() -> None:
    while STARTED:
        p = STARTED.pop()
        proc = getattr(p, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)


class Proc:
    """One `clickstream sessionizer` process with its own HTTP port for /metrics."""

    def __init__(
        self,
        tmp: Path,
        name: str,
        bootstrap: str,
        chdb: Path,
        db: str,
        topic: str,
        group: str,
        wait: bool = True,
    ):
        self.port = broker.free_port()
        self.log = tmp / f"{name}.log"
        STARTED.append(self)
        cmd = [
            sys.executable,
            "-m",
            "clickstream.cli",
            "sessionizer",
            "--kafka",
            bootstrap,
            "--clickhouse",
            f"chdb://{chdb}",
            "--database",
            db,
            "--topic",
            topic,
            "--consumer-group",
            group,
            "--port",
            str(self.port),
            "--flush-interval-s",
            "0.2",
            "--data",
            str(tmp / name),
            "--log-level",
            "info",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKSTREAM_")}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_healthy()

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.get("/healthz")[0] != 200:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, (
                "sessionizer not healthy: " + self.log.read_text()[-2000:]
            )
            time.sleep(0.2)

    def metric(self, name: str) -> float:
        for line in self.get("/metrics")[1].decode().splitlines():
            if line.startswith(f"clickstream_{name} "):
                return float(line.split()[1])
        return 0.0

    def wait_metric(
        self, name: str, at_least: float, timeout: float = 90, exact: bool = False
    ) -> None:
        deadline = time.monotonic() + timeout
        while (self.metric(name) != at_least) if exact else (self.metric(name) < at_least):
            assert time.monotonic() < deadline, self.diagnosis(
                f"{name} = {self.metric(name)}, waited for {'' if exact else '>= '}{at_least}"
            )
            time.sleep(0.1)

    def diagnosis(self, what: str) -> str:
        """What a failed wait saw: the process's sessionizer gauges and counters, its
        health checks and the end of its log."""
        metrics = [
            line
            for line in self.get("/metrics")[1].decode().splitlines()
            if line.startswith(("clickstream_sessionizer_", "clickstream_hits_"))
        ]
        status, health = self.get("/healthz")
        return (
            "\n".join([what, f"healthz {status}: {health.decode()[:500]}", *metrics[:60], "log:"])
            + "\n"
            + self.log.read_text()[-3000:]
        )

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM: drain the topic, close every session, commit, exit (uvicorn re-raises
        the signal after its graceful shutdown, hence -15)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        assert code in (0, -15), f"exit {code}: " + self.log.read_text()[-3000:]


_READ = (
    "import sys, orjson\n"
    "from clickstream import warehouse\n"
    "c = warehouse.connect('chdb://' + sys.argv[1])\n"
    "out = {}\n"
    "for t, k in (('sessions', 'session_id'), ('hits', 'hit_id')):\n"
    "    r = warehouse.read_query(c, f'SELECT * FROM {sys.argv[2]}.{t} {sys.argv[3]} ORDER BY {k}, version')\n"
    "    out[t] = [r.columns] + r.rows\n"
    "sys.stdout.buffer.write(orjson.dumps(out, default=str))\n"
)


class Reader:
    """Rows of sessions and hits of one store, read by a subprocess because this test
    process may not open a second chDB engine path; several can run at once."""

    def __init__(self, chdb: Path, db: str, final: bool):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _READ, str(chdb), db, "FINAL" if final else ""],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def result(self) -> dict[str, list[list[Any]]]:
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err.decode()[-2000:]
        return orjson.loads(out)


def read_tables(chdb: Path, db: str, final: bool) -> dict[str, list[list[Any]]]:
    return Reader(chdb, db, final).result()


def as_final(*tables: dict[str, list[list[Any]]]) -> dict[str, list[list[Any]]]:
    """ReplacingMergeTree(version, is_deleted) over the union of several stores: per key
    the row with the highest version, deleted rows dropped, then version removed."""
    out = {}
    for name, key in (("sessions", "session_id"), ("hits", "hit_id")):
        cols = next(t[name][0] for t in tables if t[name][0])
        k, ver, dele = cols.index(key), cols.index("version"), cols.index("is_deleted")
        best: dict[str, list[Any]] = {}
        for t in tables:
            assert t[name][0] in ([], cols)
            for row in t[name][1:]:
                if row[k] not in best or row[ver] > best[row[k]][ver]:
                    best[row[k]] = row
        out[name] = sorted(
            [[v for i, v in enumerate(r) if i != ver] for r in best.values() if not r[dele]],
            key=lambda r: r[k],
        )
    return out
