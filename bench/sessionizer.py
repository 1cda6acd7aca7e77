"""Sessionizer throughput on this machine: hits/s from Kafka to rows in chDB.

    python -m bench.sessionizer [--hits 100000] [--visitors 10000]

Produces the hits to an embedded Tansu broker first (timed apart), then runs the
real consumer loop (``sessionizer.loop.Sessionizer``) into a fresh chDB until every
hit is a row and every session is closed and written.  Also times the pure part
(decode → enrich → fold) over the same records in memory, for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import figure
from clickstream import broker, warehouse
from clickstream import settings as settings_mod
from clickstream.hit import Hit

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.{v} Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
PATHS = [
    "/",
    "/shop",
    "/shop/shoes",
    "/shop/hats",
    "/cart",
    "/checkout",
    "/search?q=red+shoes",
    "/search?q=hat",
    "/blog/post-{n}",
    "/product/{n}?utm_source=news&gclid=x",
]


def make_hits(n: int, visitors: int, seed: int = 1) -> list[Hit]:
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    clock = {v: now - 3 * 3600_000 + rnd.randrange(3600_000) for v in range(visitors)}
    out = []
    for i in range(n):
        v = rnd.randrange(visitors)
        clock[v] += rnd.choice([4_000, 20_000, 90_000, 45 * 60_000])
        path = rnd.choice(PATHS).format(n=rnd.randrange(200))
        out.append(
            Hit(
                site="bench",
                visitor_id=f"v{v:07d}",
                hit_id=f"h{i:09d}",
                ts=clock[v],
                received=clock[v],
                url="https://shop.example" + path,
                referrer=rnd.choice(["", "https://www.google.com/", "https://t.co/x"]),
                user_agent=rnd.choice(UAS).format(v=rnd.randrange(100, 130)),
                ip=f"81.2.{rnd.randrange(256)}.0",
                search_results=3 if "search" in path else None,
            )
        )
    out.sort(key=lambda h: h.received)
    return out


async def produce(bootstrap: str, topic: str, hits: list[Hit]) -> float:
    prod = broker.producer(bootstrap, idempotence=False)
    await prod.start()
    started = time.perf_counter()
    try:
        for h in hits:
            await prod.send(topic, h.to_json(), key=h.key)
        await prod.flush()
    finally:
        await prod.stop()
    return time.perf_counter() - started


async def run_loop(bootstrap: str, topic: str, chdb: Path, n: int) -> tuple[float, float, int, int]:
    from sessionizer.loop import Sessionizer

    s = settings_mod.load(
        flags={
            "database": "bench",
            "topic": topic,
            "consumer_group": "bench",
            "flush_interval_s": 1.0,
        },
        env={},
    )
    client = warehouse.connect(f"chdb://{chdb}")
    warehouse.migrate(client, "bench")
    sz = Sessionizer(s, client)
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(sz.run(bootstrap))
    while sum(sz.consumed.values()) < n:
        await asyncio.sleep(0.05)
    await sz.flush(timeout=600)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    sz.stop.set()
    await task
    rows = warehouse.read_query(
        client,
        "SELECT (SELECT count() FROM bench.hits FINAL), (SELECT count() FROM bench.sessions FINAL)",
    ).rows[0]
    return elapsed, cpu, int(rows[0]), int(rows[1])


def pure(hits: list[Hit]) -> tuple[float, float]:
    from sessionizer import sessions
    from sessionizer.enrich import Context, enrich
    from sessionizer.split import Rules

    raw = [h.to_json() for h in hits]
    ctx = Context(search_params=frozenset({"q"}))
    state = sessions.State(rules=lambda site: Rules())
    started, cpu = time.perf_counter(), time.process_time()
    for i, r in enumerate(raw):
        e = enrich(Hit.from_json(r), ctx, 0, i)
        if not isinstance(e, str):
            sessions.fold(state, e)
    sessions.close_all(state)
    return time.perf_counter() - started, time.process_time() - cpu


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.sessionizer", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--hits", type=int, default=100_000)
    ap.add_argument("--visitors", type=int, default=10_000)
    args = ap.parse_args(argv)
    if not 1 <= args.hits <= 10_000_000 or not 1 <= args.visitors <= args.hits:
        ap.error("--hits 1..10M and --visitors 1..hits")
    hits = make_hits(args.hits, args.visitors)
    with (
        tempfile.TemporaryDirectory(prefix="bench-sessionizer-") as tmp,
        broker.EmbeddedBroker() as b,
    ):
        asyncio.run(broker.ensure_topic(b.bootstrap, "bench.hits", 6))
        t_produce = asyncio.run(produce(b.bootstrap, "bench.hits", hits))
        t_loop, cpu_loop, n_rows, n_sessions = asyncio.run(
            run_loop(b.bootstrap, "bench.hits", Path(tmp) / "chdb", len(hits))
        )
    t_pure, cpu_pure = pure(hits)
    n = len(hits)
    print(
        f"sessionizer: {n} hits, {args.visitors} visitors -> {n_rows} hit rows, {n_sessions} sessions",
        flush=True,
    )
    figure(
        "sessionizer.produce_to_tansu",
        n / t_produce,
        "hits/s",
        f"{t_produce:.1f} s, not in the next figure",
        0,
    )
    figure("sessionizer.kafka_to_chdb_rows", n / t_loop, "hits/s", f"end to end, {t_loop:.1f} s", 0)
    figure("sessionizer.decode_enrich_fold", n / t_pure, "hits/s", f"in memory, {t_pure:.1f} s", 0)
    figure(
        "sessionizer.kafka_to_chdb_rows_per_cpu_s",
        n / cpu_loop,
        "hits/CPU-s",
        "this process's CPU time incl. chDB threads, not Tansu's: steadier on a shared machine",
        0,
    )
    figure("sessionizer.decode_enrich_fold_per_cpu_s", n / cpu_pure, "hits/CPU-s", "", 0)
    figure("sessionizer.end_to_end_vs_fold", t_pure / t_loop, "ratio")
    return 0 if n_rows == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
