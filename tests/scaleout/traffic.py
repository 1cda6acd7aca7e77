"""Helpers of the scale-out test: deterministic browser-like traffic sent over HTTP to
collector processes (`clickstream collector`), and the partition of a visitor.

Each visitor is a browser: its own HTTP client and cookie jar (cookies are not per
port, so the `_cs_vid` cookie set by one collector reaches the other, as behind a
load balancer).  Its hits go out one request at a time, in event-time order, as
pixels or beacon batches, to collector A, B or alternately to both.  Event times are
set through `cts`/`sts` (ts = received - (sts - cts)): sessions 40-90 min apart,
hits 5 s-4 min apart, so where the sessions split is known in advance, whatever the
few seconds the requests take.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka.partitioner import murmur2

from clickstream import broker

ROOT = Path(__file__).resolve().parents[2]
SITE = "shop"
PAGES = ("/", "/a", "/b", "/c", "/cart", "/s?q=shoes")
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def partition_of(vid: str, partitions: int, site: str = SITE) -> int:
    """aiokafka's default partitioner over the collector's key ``site|visitor_id``."""
    return (murmur2(f"{site}|{vid}".encode()) & 0x7FFFFFFF) % partitions


@dataclass
class Request:
    """One HTTP request of a visitor: a pixel (one event) or a beacon (1-3 events)."""

    collector: int  # 0 or 1
    beacon: bool
    events: list[dict[str, Any]]


@dataclass
class Visitor:
    vid: str
    user_agent: str
    requests: list[Request] = field(default_factory=list)
    sessions: int = 0  # sessions this traffic must give

    @property
    def hits(self) -> int:
        return sum(len(r.events) for r in self.requests)


def plan(seed: int, visitors: int) -> list[Visitor]:
    rnd = random.Random(seed)
    out = []
    for i in range(visitors):
        v = Visitor(f"visitor-{seed}-{i:03d}", BOT_UA if i % 17 == 5 else UA)
        route = rnd.choice(("a", "b", "alternate", "alternate"))
        style = rnd.choice(("pixel", "beacon", "mixed"))
        events: list[tuple[int, dict[str, Any]]] = []  # (session number, event)
        back = 0  # ms before the send, counted backwards from the last hit
        n_sessions = rnd.randint(1, 3)
        for s in range(n_sessions):
            for k in range(rnd.randint(2, 6)):
                page = rnd.choice(PAGES)
                ev: dict[str, Any] = {"s": SITE, "u": "https://shop.example" + page}
                if page.startswith("/s?"):
                    ev["e"] = "search"
                    ev["q"] = "shoes"
                    ev["n"] = rnd.choice((0, 0, 4))
                elif rnd.random() < 0.15:
                    ev["e"] = "add_to_cart"
                if k == 0 and rnd.random() < 0.3:
                    ev.update(utm_source="news", utm_medium="email", utm_campaign=f"c{s}")
                if rnd.random() < 0.3:
                    ev["nav"] = rnd.choice(("navigate", "back_forward", "reload"))
                if rnd.random() < 0.05:
                    ev["uid"] = f"crm-{i:03d}"
                if rnd.random() < 0.08:
                    ev["x_revenue"] = "19.5"
                events.append((s, ev))
            v.sessions += 1
        # a campaign that changes mid-session starts one more session (no idle gap)
        if n_sessions == 1 and len(events) >= 3 and i % 3 == 0:
            events[2][1].update(utm_source="ads", utm_medium="cpc", utm_campaign="late")
            v.sessions += 1
        # event times, newest last: gaps inside a session 5 s-4 min, between sessions 40-90 min
        stamps = []
        for j in range(len(events) - 1, -1, -1):
            stamps.append(back)
            if j > 0:
                same = events[j - 1][0] == events[j][0]
                back += (
                    rnd.randrange(5_000, 240_000)
                    if same
                    else rnd.randrange(40 * 60_000, 90 * 60_000)
                )
        stamps.reverse()
        back0 = rnd.randrange(60_000, 3600_000)
        for (_, ev), b in zip(events, stamps, strict=True):
            ev["back"] = b + back0
        j = 0
        while j < len(events):
            take = (
                1
                if style == "pixel" or (style == "mixed" and rnd.random() < 0.5)
                else rnd.randint(1, 3)
            )
            batch = [ev for _, ev in events[j : j + take]]
            n = len(v.requests)
            collector = {"a": 0, "b": 1}.get(route, n % 2)
            v.requests.append(Request(collector, take > 1 or style == "beacon", batch))
            j += take
        out.append(v)
    return out


def anchors(partitions: int, seed: int) -> list[Visitor]:
    """One visitor per partition with one hit: sent first, its session stays open to the end."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        vid = f"anchor-{seed}-{n:04d}"
        found.setdefault(partition_of(vid, partitions), vid)
        n += 1
    return [
        Visitor(
            vid,
            UA,
            [Request(p % 2, False, [{"s": SITE, "u": "https://shop.example/anchor", "back": 0}])],
            1,
        )
        for p, vid in sorted(found.items())
    ]


async def send(
    visitors: list[Visitor], collectors: list[str], part: tuple[float, float], concurrency: int = 12
) -> int:
    """Send each visitor's requests in ``part`` (fractions of its list), one at a time per
    visitor, visitors concurrently; every answer must be the success; returns events sent."""
    gate = asyncio.Semaphore(concurrency)
    sent = 0

    async def one(v: Visitor, client: httpx.AsyncClient) -> None:
        nonlocal sent
        lo, hi = round(len(v.requests) * part[0]), round(len(v.requests) * part[1])
        async with gate:
            for r in v.requests[lo:hi]:
                now = int(time.time() * 1000)
                events = [
                    {k: x for k, x in ev.items() if k != "back"}
                    | {"vid": v.vid, "cts": now - ev["back"], "sts": now}
                    for ev in r.events
                ]
                base = collectors[r.collector]
                headers = {"user-agent": v.user_agent}
                if r.beacon:
                    resp = await client.post(f"{base}/collect", json=events, headers=headers)
                    assert resp.status_code == 204, resp.text
                else:
                    resp = await client.get(f"{base}/p.gif", params=events[0], headers=headers)
                    assert resp.status_code == 200 and resp.headers["content-type"] == "image/gif"
                # the browser keeps the collector's cookie: it names the same visitor
                assert client.cookies.get("_cs_vid") == v.vid
                sent += len(events)

    clients = {v.vid: httpx.AsyncClient(timeout=30) for v in visitors}
    try:
        await asyncio.gather(*(one(v, clients[v.vid]) for v in visitors))
    finally:
        for c in clients.values():
            await c.aclose()
    return sent


class CollectorProc:
    """One `clickstream collector` process (its own data dir, spool and chDB path)."""

    def __init__(self, tmp: Path, name: str, bootstrap: str, topic: str):
        self.port = broker.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{name}.log"
        data = tmp / name
        cmd = [
            sys.executable,
            "-m",
            "clickstream.cli",
            "collector",
            "--kafka",
            bootstrap,
            "--topic",
            topic,
            "--port",
            str(self.port),
            "--data",
            str(data),
            "--clickhouse",
            f"chdb://{data / 'chdb'}",
            "--log-level",
            "warning",
            "--kafka-idempotence",
            "off",
        ]  # Tansu's memory storage has no idempotent producers
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKSTREAM_")}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (
                "collector not healthy: " + self.log.read_text()[-2000:]
            )
            time.sleep(0.2)

    def metric(self, name: str) -> float:
        total = 0.0
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith(f"clickstream_{name} ") or line.startswith(f"clickstream_{name}{{"):
                total += float(line.split()[-1])
        return total

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        assert code in (0, -15), f"exit {code}: " + self.log.read_text()[-3000:]
