"""Soak: a steady rate of hits through the whole pipeline for minutes.

Starts ``clickstream serve`` (embedded Tansu, chDB) in a temporary data directory,
sends pixel hits at a fixed rate from keep-alive connections (1,000 visitors, 40
pages), and once a second a *marker* hit of its own site whose arrival a poller
looks for through ``POST /api/sql``; prints the rate held, answer latency, the
hit → queryable latency of the markers (p50/p99/max; the poll interval, 0.25 s,
bounds its resolution), the RSS of the serve process and of the broker child at
start and end, and checks that every answered hit is in ClickHouse at the end.

    python -m bench.soak [--duration 180] [--rate 500] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import BenchError, figure, free_port, process, serve_command, tail, wait_http

TOKEN = "soak-token"
POLL_S = 0.25


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def child_label(pid: int) -> str:
    """``broker`` for the Tansu child, ``worker<N>`` for a collector worker process."""
    try:
        cmd = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return f"child{pid}"
    if "tansu" in cmd or " broker " in cmd:
        return "broker"
    return (
        f"worker{pid}" if "spawn_main" in cmd else f"child{pid}"
    )  # e.g. multiprocessing's tracker


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class Load:
    """Fixed-rate pixel requests over keep-alive connections; counts and answer latencies."""

    def __init__(self, port: int, rate: float, connections: int):
        self.port, self.rate, self.connections = port, rate, connections
        self.sent = self.ok = self.errors = self.missed = 0
        self.latencies: list[float] = []
        self.markers: dict[int, float] = {}  # marker number -> monotonic send time

    async def run(self, duration: float) -> None:
        deadline = time.monotonic() + duration
        await asyncio.gather(
            *(self._worker(i, deadline) for i in range(self.connections)),
            self._marker_loop(deadline),
        )

    async def _request(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], target: str
    ) -> bool:
        reader, writer = conn
        writer.write(f"GET {target} HTTP/1.1\r\nHost: soak\r\nUser-Agent: soak/1\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        return head.startswith(b"HTTP/1.1 200")

    async def _worker(self, n: int, deadline: float) -> None:
        rng = random.Random(n)
        interval = self.connections / self.rate
        conn = await asyncio.open_connection("127.0.0.1", self.port)
        next_at = time.monotonic() + rng.random() * interval
        try:
            while next_at < deadline:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                late = int((time.monotonic() - next_at) / interval)
                if late > 0:  # the server is behind: skip the slots, never burst to catch up
                    self.missed += late
                    next_at += late * interval
                vid = f"soakvisitor{rng.randrange(1000):05d}"
                target = (
                    f"/p.gif?s=soak&u=https%3A%2F%2Fsoak.example%2Fp{rng.randrange(40)}"
                    f"&vid={vid}&t=Soak"
                )
                started = time.monotonic()
                self.sent += 1
                try:
                    good = await self._request(conn, target)
                except (OSError, asyncio.IncompleteReadError):
                    good = False
                    conn[1].close()
                    conn = await asyncio.open_connection("127.0.0.1", self.port)
                self.latencies.append(time.monotonic() - started)
                self.ok += good
                self.errors += not good
        finally:
            conn[1].close()

    async def _marker_loop(self, deadline: float) -> None:
        conn = await asyncio.open_connection("127.0.0.1", self.port)
        n = 0
        try:
            while time.monotonic() < deadline:
                target = (
                    f"/p.gif?s=soakmark&u=https%3A%2F%2Fsoak.example%2Fm%2F{n}&vid=soakmarker0001"
                )
                self.markers[n] = time.monotonic()
                await self._request(conn, target)
                n += 1
                await asyncio.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
        finally:
            conn[1].close()


def poll_markers(url: str, load: Load, seen: dict[int, float], stop: threading.Event) -> None:
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        while not stop.is_set():
            r = client.post(
                f"{url}/api/sql",
                content="SELECT path FROM clickstream.hits WHERE site = 'soakmark'",
            )
            now = time.monotonic()
            if r.status_code == 200:
                for (path,) in r.json()["rows"]:
                    n = int(path.rsplit("/", 1)[1])
                    if n not in seen and n in load.markers:
                        seen[n] = now - load.markers[n]
            stop.wait(POLL_S)


def sql_one(url: str, query: str) -> object:
    r = httpx.post(
        f"{url}/api/sql", content=query, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
    )
    if r.status_code != 200:
        raise BenchError(f"/api/sql answered {r.status_code}: {r.text[:200]}")
    return r.json()["rows"][0][0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--duration", type=float, default=180.0, help="seconds of load (default 180)"
    )
    parser.add_argument(
        "--rate", type=float, default=500.0, help="pixel hits per second (default 500)"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections (default 32)"
    )
    args = parser.parse_args(argv)
    if (
        not 5 <= args.duration <= 24 * 3600
        or not 1 <= args.rate <= 100_000
        or not 1 <= args.connections <= 512
    ):
        parser.error("--duration 5..86400 s, --rate 1..100000, --connections 1..512")
    with tempfile.TemporaryDirectory(prefix="clickstream-soak-") as tmp:
        data, port = Path(tmp) / "data", free_port()
        log = Path(tmp) / "serve.log"
        cmd = serve_command(port, data, "--api-token", TOKEN, "--log-level", "warning")
        with process(cmd, log) as proc:
            url = f"http://127.0.0.1:{port}"
            healthy_by = time.monotonic() + 60
            while wait_http(f"{url}/healthz", proc, log).status != 200:
                if time.monotonic() > healthy_by:
                    raise BenchError(f"serve is not healthy: {tail(log)}")
                time.sleep(0.3)
            brokers = children(proc.pid)
            labels = {b: child_label(b) for b in brokers}
            rss0 = {"serve": rss_mb(proc.pid), **{f"{labels[b]}[{b}]": rss_mb(b) for b in brokers}}
            load = Load(port, args.rate, args.connections)
            seen: dict[int, float] = {}
            stop = threading.Event()
            poller = threading.Thread(
                target=poll_markers, args=(url, load, seen, stop), daemon=True
            )
            poller.start()
            started = time.monotonic()
            asyncio.run(load.run(args.duration))
            elapsed = time.monotonic() - started
            rss1 = {"serve": rss_mb(proc.pid), **{f"{labels[b]}[{b}]": rss_mb(b) for b in brokers}}
            drain_until = time.monotonic() + 60
            while len(seen) < len(load.markers) and time.monotonic() < drain_until:
                time.sleep(POLL_S)
            stop.set()
            poller.join(30)
            stored = 0
            while time.monotonic() < drain_until + 60:
                stored = int(
                    sql_one(url, "SELECT count() FROM clickstream.hits FINAL WHERE site = 'soak'")
                )  # type: ignore[call-overload]
                if stored >= load.ok:
                    break
                time.sleep(1)
            if proc.poll() is not None:
                raise BenchError(f"serve exited during the soak: {tail(log)}")
    lat = list(seen.values())
    print(
        f"soak: {args.duration:g} s at {args.rate:g} hits/s target over {args.connections} connections"
    )
    figure(
        "soak_rate_held",
        load.ok / elapsed,
        "hits/s",
        f"{load.ok} answered 200 of {load.sent}, "
        f"{load.errors} errors, {load.missed} slots missed, target {args.rate:g}/s",
        digits=1,
    )
    figure("soak_answer_p50", percentile(load.latencies, 50) * 1000, "ms")
    figure("soak_answer_p99", percentile(load.latencies, 99) * 1000, "ms")
    figure(
        "soak_queryable_p50",
        percentile(lat, 50),
        "s",
        f"{len(lat)}/{len(load.markers)} markers seen",
    )
    figure("soak_queryable_p99", percentile(lat, 99), "s")
    figure("soak_queryable_max", max(lat, default=float("nan")), "s")
    figure("soak_hits_stored", stored, "hits", f"of {load.ok} answered (FINAL)", digits=0)
    for name in rss0:
        label = name.split("[")[0].rstrip("0123456789")  # worker123[123] -> worker
        figure(f"soak_rss_{label}_start", rss0[name], "MB", name, digits=0)
        figure(
            f"soak_rss_{label}_end",
            rss1[name],
            "MB",
            f"growth {rss1[name] - rss0[name]:+.0f} MB",
            digits=0,
        )
    return 0 if stored == load.ok and load.errors == 0 and len(lat) == len(load.markers) else 1


if __name__ == "__main__":
    raise SystemExit(main())
