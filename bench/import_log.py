"""Import throughput on a generated 1M-line combined log.

    python -m bench.import_log [--lines N] [--kafka]

Prints lines/s for: parsing alone (regex + time), the whole import pipeline without
I/O to Kafka (read + parse + filter + Hit), and, with ``--kafka``, through to an
embedded Tansu broker (every hit acknowledged).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from importer.convert import Converter
from importer.formats import compile_format
from importer.run import iter_hits, produce
from importer.stats import ImportStats

PAGES = ["/", "/blog", "/blog/post-{n}", "/shop/item?id={n}", "/search?q=shoes+{n}", "/about",
         "/docs/{n}/intro", "/cart", "/checkout?step=2&utm_source=mail&utm_campaign=spring"]
STATIC = ["/css/site.css", "/js/app.js?v={n}", "/img/logo.png", "/favicon.ico", "/fonts/a.woff2"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def generate(path: Path, lines: int, seed: int = 7) -> None:
    """A combined log: ~60% pages, 30% static, 4% 404, 3% POST, 0.1% junk, 5,000 visitors."""
    rnd = random.Random(seed)
    t = 1_700_000_000  # seconds
    with path.open("w") as out:
        buf = []
        for i in range(lines):
            t += rnd.random() < 0.3
            tm = time.gmtime(t)
            stamp = f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} +0000"
            v = rnd.randrange(5000)
            ip = f"10.{v >> 8 & 255}.{v & 255}.{v % 7}"
            ua = AGENTS[v % len(AGENTS)]
            r = rnd.random()
            method, status = "GET", 200
            if r < 0.30:
                target = rnd.choice(STATIC).format(n=i % 50)
            else:
                target = rnd.choice(PAGES).format(n=rnd.randrange(300))
                if r < 0.34:
                    status = 404
                elif r < 0.37:
                    method = "POST"
            if r > 0.999:
                buf.append(f"{ip} garbage line {i}\n")
                continue
            buf.append(f'{ip} - - [{stamp}] "{method} {target} HTTP/1.1" {status} {1000 + i % 9000} '
                       f'"https://www.example.org/" "{ua}"\n')
            if len(buf) >= 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))


def bench_parse(path: Path) -> tuple[int, float]:
    parse = compile_format("combined").parse
    start = time.perf_counter()
    n = 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:  # noqa: SIM105 - faster than contextlib.suppress in the loop
                parse(line.rstrip("\n"))
            except ValueError:
                pass
            n += 1
    return n, time.perf_counter() - start


def bench_pipeline(path: Path) -> tuple[ImportStats, float]:
    stats = ImportStats()
    start = time.perf_counter()
    for _ in iter_hits([str(path)], compile_format("combined"), Converter("bench"), stats):
        pass
    return stats, time.perf_counter() - start


def bench_kafka(path: Path) -> tuple[ImportStats, int, float]:
    from clickstream.broker import EmbeddedBroker

    stats = ImportStats()
    with EmbeddedBroker() as tansu:
        start = time.perf_counter()
        hits = iter_hits([str(path)], compile_format("combined"), Converter("bench"), stats)
        sent = asyncio.run(produce(hits, tansu.bootstrap, "clickstream.hits", 6, idempotence=False))
        return stats, sent, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--kafka", action="store_true", help="also measure through to the embedded broker")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        t0 = time.perf_counter()
        generate(path, args.lines)
        print(f"generated {args.lines:,} lines ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        n, secs = bench_parse(path)
        print(f"parse only (regex + time):              {n / secs:>10,.0f} lines/s  ({secs:.1f} s)")
        stats, secs = bench_pipeline(path)
        print(f"read + parse + filter + Hit (no Kafka): {stats.lines / secs:>10,.0f} lines/s  ({secs:.1f} s; "
              f"{stats.imported:,} hits, skipped {dict(stats.skipped)})")
        if args.kafka:
            stats, sent, secs = bench_kafka(path)
            print(f"through to Kafka (Tansu, acks=all):     {stats.lines / secs:>10,.0f} lines/s  ({secs:.1f} s; "
                  f"{sent:,} hits acknowledged = {sent / secs:,.0f} hits/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
