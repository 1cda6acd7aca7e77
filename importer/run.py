"""`clickstream import-log`: read → parse → filter → Hit → Kafka, with progress and a summary.

:func:`iter_hits` is the whole pipeline without I/O to Kafka (tests and the benchmark
use it directly); :func:`produce` sends its hits to the hits topic with the same
producer factory as the collector, key ``hit.key``; :func:`main` is the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from aiokafka.partitioner import DefaultPartitioner

from clickstream import broker
from clickstream.hit import Hit
from importer.convert import (
    DEFAULT_STATUS_SPEC,
    Converter,
    Filters,
    parse_hostname,
    parse_methods,
    parse_statuses,
)
from importer.formats import PRESETS, FormatError, LineError, LogFormat, compile_format
from importer.read import ReadProblem, SourceError, check_sources, read_lines
from importer.stats import ImportStats
from importer.tracked import TrackedIndex


class Progress:
    """One self-rewriting line on stderr: lines, lines/s, imported, skipped."""

    def __init__(
        self,
        stats: ImportStats,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        every_s: float = 0.5,
    ):
        self.stats = stats
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.every_s = every_s
        self.start = self._last = time.monotonic()
        self.shown = False

    def tick(self) -> None:
        if not self.enabled or self.stats.lines & 1023:
            return
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.show(now)

    def show(self, now: float) -> None:
        s = self.stats
        rate = s.lines / max(now - self.start, 1e-9)
        self.stream.write(
            f"\r{s.lines:>12,} lines  {rate:>9,.0f} lines/s  imported {s.imported:,}"
            f"  skipped {s.skipped_total:,} "
        )
        self.stream.flush()
        self.shown = True

    def done(self) -> float:
        now = time.monotonic()
        if self.enabled:
            self.show(now)
            self.stream.write("\n")
            self.stream.flush()
        return now - self.start


def iter_hits(
    paths: list[str],
    fmt: LogFormat,
    conv: Converter,
    stats: ImportStats,
    tracked: TrackedIndex | None = None,
    progress: Progress | None = None,
) -> Iterator[Hit]:
    """Every importable hit of the files, in order; every other line counted in ``stats``."""
    parse, check, convert = fmt.parse, conv.check, conv.convert
    tried, matched = stats.files_tried, stats.files_matched
    for item in read_lines(paths):
        stats.lines += 1
        if progress is not None:
            progress.tick()
        if isinstance(item, ReadProblem):
            stats.skip("read_error", f"{item.source}:{item.number + 1}", item.message)
            continue
        if item.number == 1:
            conv.new_file()
        if item.non_utf8:
            stats.note_non_utf8(f"{item.source}:{item.number}", item.text)
        if item.too_long:
            stats.skip("too_long", f"{item.source}:{item.number}", item.text)
            continue
        tried[item.source] = None
        try:
            line = parse(item.text)
            matched.add(item.source)
            check(line)
            hit = convert(item.text, line)
            if tracked is not None and tracked.matches(hit):
                raise LineError("tracked")
        except LineError as exc:
            reason = exc.args[0]
            if reason == "malformed" and item.no_newline:
                reason = "truncated"
            stats.skip(reason, f"{item.source}:{item.number}", item.text)
            continue
        stats.imported += 1
        yield hit


async def produce(
    hits: Iterable[Hit], bootstrap: str, topic: str, partitions: int, idempotence: bool
) -> int:
    """Send every hit to ``topic``, key ``hit.key``; returns how many the broker acknowledged.

    Records are appended to one batch per partition and sent with ``send_batch`` (2-3x the
    rate of one ``send`` per record); the partition is the one aiokafka's default
    partitioner gives the key, as for the collector's live hits, so a visitor's imported
    and live hits share a partition.  Record timestamps are the send time, not the log's
    (a broker's time-based retention would otherwise drop an old log's records at once).
    """
    await broker.ensure_topic(bootstrap, topic, partitions)
    producer = broker.producer(bootstrap, idempotence, client_id="clickstream-import")
    await producer.start()
    sent = 0
    try:
        ids = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        partition_cache: dict[bytes, int] = {}  # murmur2 in pure Python costs ~50 us a key
        batches: dict[int, Any] = {}
        counts: dict[int, int] = {}
        pending: list[tuple[asyncio.Future[Any], int]] = []

        async def flush(pid: int) -> None:
            batch = batches.pop(pid)
            batch.close()
            pending.append(
                (await producer.send_batch(batch, topic, partition=pid), counts.pop(pid))
            )

        for n, hit in enumerate(hits, 1):
            key, value = hit.key, hit.to_json()
            pid = partition_cache.get(key, -1)
            if pid < 0:
                if len(partition_cache) > 200_000:
                    partition_cache.clear()
                pid = partition_cache[key] = partitioner(key, ids, ids)
            batch = batches.get(pid)
            if batch is None:
                batch = batches[pid] = producer.create_batch()
                counts[pid] = 0
            if batch.append(key=key, value=value, timestamp=None) is None:
                await flush(pid)
                batch = batches[pid] = producer.create_batch()
                counts[pid] = 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise broker.BrokerError(f"a hit of {len(value)} bytes does not fit in a batch")
            counts[pid] += 1
            if len(pending) >= 64:
                sent += await _acked(pending)
            elif not n & 1023:
                await asyncio.sleep(0)  # let the sender task run while we parse
        for pid in list(batches):
            await flush(pid)
        sent += await _acked(pending)
    finally:
        await producer.stop()
    return sent


async def _acked(pending: list[tuple[asyncio.Future[Any], int]]) -> int:
    await asyncio.gather(*(fut for fut, _ in pending))
    n = sum(count for _, count in pending)
    pending.clear()
    return n


# --- CLI -------------------------------------------------------------------------------


def add_parser(
    subparsers: Any,
    add_setting_flags: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.ArgumentParser:
    """The ``import-log`` subcommand; ``add_setting_flags`` adds the shared settings flags
    (``--kafka``, ``--clickhouse``, ``--topic``, ...) when the main CLI passes it."""
    p = subparsers.add_parser(
        "import-log",
        help="import web-server access logs (Combined/Common/LogFormat; .gz, .bz2, - for stdin)",
        description="Import access logs into the hits topic. Summary: lines read, imported, "
        "skipped by reason with examples. See importer/README.md.",
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="log files (.gz/.bz2 detected), - for stdin"
    )
    p.add_argument("--site", required=True, help="site id the hits belong to")
    p.add_argument(
        "--format",
        dest="log_format",
        default="combined",
        help=f"{' | '.join(PRESETS)} or an Apache LogFormat / nginx log_format string (default: combined)",
    )
    p.add_argument(
        "--hostname",
        default="",
        help="the site's host name or URL (shop.example, https://shop.example) for page URLs "
        "(default: the log's %%v/$host, else none); referrers from it are internal, not a referral",
    )
    p.add_argument(
        "--methods", default="GET", help="methods to import, comma list or 'all' (default: GET)"
    )
    p.add_argument(
        "--status",
        default=DEFAULT_STATUS_SPEC,
        help="statuses to import, e.g. 200-399,404 or 'all' (default: 200-299,304: redirects and "
        "errors are not page views)",
    )
    p.add_argument(
        "--include-static",
        action="store_true",
        help="also import static assets (css, js, images, ...)",
    )
    p.add_argument(
        "--skip-tracked",
        action="store_true",
        help="skip page views the pixel already recorded (matching rule: importer/README.md)",
    )
    p.add_argument(
        "--url",
        default="",
        help="with --skip-tracked: a running `clickstream serve` to read pixel hits from (else --clickhouse)",
    )
    p.add_argument(
        "--match-window",
        type=float,
        default=10.0,
        help="seconds between a log line and a pixel hit that still match (default: 10)",
    )
    p.add_argument("--dry-run", action="store_true", help="parse and count only; send nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    if add_setting_flags is not None:
        add_setting_flags(p)
    p.set_defaults(handler=main)
    return p


def _fail(message: str, status: int = 2) -> int:
    print(f"clickstream import-log: error: {message}", file=sys.stderr)
    return status


def main(args: argparse.Namespace, settings: Any) -> int:
    """Run an import: 0 when every file was read to its end (skipped lines are normal),
    1 when some could not be (a cut .gz: its lines before the damage are imported) or
    Kafka, ClickHouse or the serve API failed (unreachable), 2 on a usage error."""
    from collector.validate import SITE_RE

    site = args.site
    if not SITE_RE.match(site):  # the collector's rule: a hit of another site id is dropped
        return _fail(
            f"--site must be 1-64 characters of letters, digits, '.', '_', '-' "
            f"(the collector's rule), not {site[:80]!r}"
        )
    if settings.site_allow_list and site not in settings.site_allow_list:
        return _fail(
            f"--site {site!r} is not in the `sites` allow list ({', '.join(sorted(settings.site_allow_list))})"
        )
    if not 0 <= args.match_window <= 3600:
        return _fail("--match-window must be within 0..3600 seconds")
    try:
        fmt = compile_format(args.log_format)
        filters = Filters(
            methods=parse_methods(args.methods),
            statuses=parse_statuses(args.status),
            skip_static=not args.include_static,
        )
        scheme, hostname = parse_hostname(args.hostname) if args.hostname else ("http", "")
        check_sources(args.files)
    except (FormatError, ValueError, SourceError) as exc:
        return _fail(str(exc))
    site_settings = settings.for_site(site)
    conv = Converter(
        site,
        filters,
        host=hostname,
        ip_truncate=site_settings.ip_truncate,
        scheme=scheme,
        trust_proxy=settings.trust_proxy,
    )
    tracked = None
    if args.skip_tracked:
        if not args.url and not settings.clickhouse:
            return _fail(
                "--skip-tracked reads the pixel hits: give --url of a running `clickstream serve` "
                "or --clickhouse DSN"
            )
        tracked = _tracked_index(settings, site, args.match_window, args.url)
    stats = ImportStats()
    progress = Progress(stats, enabled=False if args.no_progress else None)
    hits = iter_hits(args.files, fmt, conv, stats, tracked, progress)
    bootstrap = settings.kafka
    if not bootstrap:
        from clickstream import running

        serve = running.find(settings.data_dir)  # a serve's embedded broker on this machine
        bootstrap = str(serve["kafka"]) if serve else ""
    if not args.dry_run and not bootstrap:
        return _fail(
            "import-log needs the broker: --kafka HOST:PORT (a running `clickstream serve` "
            "prints it as 'Kafka: ...'), or CLICKSTREAM_KAFKA"
        )
    # Idempotence only when asked for ("on"): a re-sent hit is harmless (same hit id,
    # deduplicated downstream) and Tansu's memory storage refuses idempotent producers.
    idempotent = settings.kafka_idempotence == "on"
    try:
        if args.dry_run:
            for _ in hits:
                pass
        else:
            asyncio.run(
                produce(hits, bootstrap, settings.topic, settings.topic_partitions, idempotent)
            )
    except Exception as exc:  # aiokafka, ClickHouse or the API raise many types: one line
        progress.done()
        print(stats.summary(), file=sys.stdout)
        where = "dry run" if args.dry_run else f"Kafka at {bootstrap}"
        first = str(exc).splitlines()[0] if str(exc) else ""
        return _fail(
            f"{where}: {type(exc).__name__}: {first} (the summary above counts the lines read before it)",
            status=1,
        )
    seconds = progress.done()
    print(stats.summary(seconds), file=sys.stdout)
    for path in stats.files_unmatched():
        shown = fmt.name if fmt.name != "custom" else "given"
        print(
            f"clickstream import-log: warning: no line of {path} matched the format {shown} "
            f"({fmt.source[:200]!r}): give the server's own with --format (importer/README.md)",
            file=sys.stderr,
        )
    if stats.skipped.get("read_error"):
        print(
            "clickstream import-log: some input could not be read to its end (see read_error above)",
            file=sys.stderr,
        )
        return 1
    return 0


def _tracked_index(settings: Any, site: str, window_s: float, url: str) -> TrackedIndex:
    from clickstream import warehouse
    from importer.tracked import api_loader, clickhouse_loader

    if url:
        token = settings.api_token
        if not token:
            path = settings.data_dir / "api_token"
            token = path.read_text().strip() if path.exists() else ""
        loader = api_loader(url, token, settings.database, site)
    else:
        client = warehouse.connect(settings.clickhouse_dsn, settings.chdb_max_memory)
        loader = clickhouse_loader(client, settings.database, site)
    return TrackedIndex(loader, int(window_s * 1000))
