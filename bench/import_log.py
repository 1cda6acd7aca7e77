"""Import throughput on a generated 1M-line combined log.

    python -m bench.import_log [--lines N] [--serve-lines N] [--no-serve]

Prints lines/s for: parsing alone (regex + time), the whole import without I/O to
Kafka (read + parse + filter + Hit), then into a running ``clickstream serve``: until the
broker acknowledged every hit, and until every hit is queryable in ClickHouse
(``hits FINAL``), i.e. through Kafka and the sessionizer.  The serve run takes the first
``--serve-lines`` lines of the same log (default 200,000) so that ``make bench`` stays
within its time cap on a small machine; the sessionizer, not the parser, sets that rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import figure
from importer.convert import Converter
from importer.formats import compile_format
from importer.run import iter_hits, produce
from importer.stats import ImportStats

PAGES = [
    "/",
    "/blog",
    "/blog/post-{n}",
    "/shop/item?id={n}",
    "/search?q=shoes+{n}",
    "/about",
    "/docs/{n}/intro",
    "/cart",
    "/checkout?step=2&utm_source=mail&utm_campaign=spring",
]
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
            buf.append(
                f'{ip} - - [{stamp}] "{method} {target} HTTP/1.1" {status} {1000 + i % 9000} '
                f'"https://www.example.org/" "{ua}"\n'
            )
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


def sql_count(port: int, token: str, sql: str) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/sql",
        data=sql.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return int(json.loads(r.read())["rows"][0][0])


def bench_serve(path: Path, tmp: Path, timeout: float = 600.0) -> None:
    """Import into a running serve: seconds until acknowledged, and until queryable."""
    from bench.common import BenchError, free_port, process, serve_command, wait_http

    port, kafka_port, token = free_port(), free_port(), "bench-import-log"
    env = {**os.environ, "CLICKSTREAM_API_TOKEN": token, "CLICKSTREAM_LOG_LEVEL": "warning"}
    cmd = serve_command(port, tmp / "data", "--broker-port", str(kafka_port))
    log = tmp / "serve.log"
    with process(cmd, log, env=env) as proc:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log, timeout=120)
        stats = ImportStats()
        start = time.perf_counter()
        hits = iter_hits([str(path)], compile_format("combined"), Converter("bench"), stats)
        sent = asyncio.run(
            produce(hits, f"127.0.0.1:{kafka_port}", "clickstream.hits", 6, idempotence=False)
        )
        acked = time.perf_counter() - start
        figure(
            "import_log.to_kafka",
            stats.lines / acked,
            "lines/s",
            f"{sent:,} hits acknowledged by serve's broker in {acked:.1f} s, sessionizer consuming meanwhile",
            0,
        )
        sql = "SELECT count() FROM clickstream.hits FINAL WHERE site = 'bench'"
        deadline = time.monotonic() + timeout
        while (count := sql_count(port, token, sql)) < sent:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise BenchError(
                    f"only {count:,} of {sent:,} hits in ClickHouse after {timeout:g} s"
                )
            time.sleep(0.5)
        done = time.perf_counter() - start
        figure(
            "import_log.to_clickhouse",
            stats.lines / done,
            "lines/s",
            f"{count:,} hits queryable in hits FINAL {done:.1f} s after the import started",
            0,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.import_log", description=__doc__)
    ap.add_argument(
        "--lines", type=int, default=1_000_000, help="lines of the generated log (default 1M)"
    )
    ap.add_argument(
        "--serve-lines",
        type=int,
        default=200_000,
        help="lines imported into serve (default 200,000)",
    )
    ap.add_argument("--no-serve", action="store_true", help="skip the run into clickstream serve")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if not 1 <= args.lines <= 50_000_000:
        ap.error("--lines must be within 1..50,000,000")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "access.log"
        t0 = time.perf_counter()
        generate(path, args.lines)
        print(
            f"generated {args.lines:,} lines ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        n, secs = bench_parse(path)
        figure("import_log.parse", n / secs, "lines/s", f"regex + time, {secs:.1f} s", 0)
        stats, secs = bench_pipeline(path)
        figure(
            "import_log.pipeline",
            stats.lines / secs,
            "lines/s",
            f"read + parse + filter + Hit, no Kafka; {stats.imported:,} hits, skipped {dict(stats.skipped)}",
            0,
        )
        if not args.no_serve:
            part = path
            if args.serve_lines < args.lines:
                part = Path(tmp) / "head.log"
                with path.open("rb") as src, part.open("wb") as dst:
                    for _, line in zip(range(args.serve_lines), src, strict=False):
                        dst.write(line)
            bench_serve(part, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
