"""Pixel req/s: nginx ``empty_gif`` vs a bare ASGI app vs the collector vs ``clickstream serve``.

Each server answers ``GET /p.gif?s=bench&u=https://a.example/x`` with a 1x1 GIF; wrk
(``-t2 -c128 -d10s`` by default) measures each in turn on this box, then the ratios are
printed against the targets of issue 9 (serve ≥ 0.25 × nginx with one worker; the
collector's full path ≥ 0.8 × the bare ASGI app, one worker each; ``collector_asgi`` is the
same collector with ``pixel_fast_path`` off, for comparison). After the serve run,
the hits are followed to ClickHouse (``/api/sql``) for the end-to-end hits/s.

Every server gets the same number of connections, enough to saturate each: the collector
answers a pixel only once Kafka has acknowledged it (hits share that wait, see
``collector/sink.py``), so with few connections (wrk's 50, say) it is bound by connections /
acknowledgement time rather than by what it can serve; a site's browsers are many
independent clients.

    python -m bench.pixel [--seconds 10] [--connections 128] [--only nginx1,nginx2,bare,collector,collector_asgi,serve]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import profile as profiler
from bench.common import (
    ROOT,
    BenchError,
    WrkResult,
    ensure_debian_packages,
    figure,
    free_port,
    process,
    python,
    run_wrk,
    wait_http,
)

PATH = "/p.gif?s=bench&u=https://a.example/x"
# nginx's own empty_gif (ngx_http_empty_gif_module.c): 43 bytes.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x01\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x01\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02L\x01\x00;"
)
_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode()),
    (b"cache-control", b"no-store"),
]


async def bare_app(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    """The least an ASGI server can do per hit: answer the GIF, read nothing."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": GIF})


NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /p.gif {{ empty_gif; add_header Cache-Control no-store; }}
    }}
}}
"""


def nginx_command(nginx: str, tmp: Path, port: int, workers: int) -> list[str]:
    if not 1 <= workers <= 64:
        raise BenchError(f"nginx workers must be 1..64, got {workers}")
    conf = tmp / f"nginx-{workers}.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, tmp=tmp, port=port))
    return [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]


def bare_command(port: int) -> list[str]:
    return [
        python(), "-m", "uvicorn", "bench.pixel:bare_app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def serve_available() -> bool:
    return (ROOT / "clickstream" / "serve.py").exists()


def cli_available() -> bool:
    return (ROOT / "clickstream" / "cli.py").exists()


_LAUNCH_CLI = "import sys; from clickstream.cli import main; sys.exit(main())"


def serve_command(port: int, data: Path) -> list[str]:
    return [
        python(), "-c", _LAUNCH_CLI, "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data", str(data),
    ]  # fmt: skip


def collector_command(port: int, bootstrap: str) -> list[str]:
    """The production collector role, one uvicorn worker, against a Kafka bootstrap."""
    return [
        python(), "-c", _LAUNCH_CLI, "collector", "--host", "127.0.0.1", "--port", str(port),
        "--kafka", bootstrap,
    ]  # fmt: skip


def role_env(data: Path, token: str, collector: bool) -> dict[str, str]:
    """Environment of a clickstream child. ``serve`` keeps its defaults; the collector
    target gets one worker and a Tansu-compatible (non-idempotent) producer."""
    env = {
        **os.environ,
        "CLICKSTREAM_DATA": str(data),
        "CLICKSTREAM_API_TOKEN": token,
        "CLICKSTREAM_LOG_LEVEL": "warning",
    }
    if collector:
        env["CLICKSTREAM_WORKERS"] = "1"
        env["CLICKSTREAM_KAFKA_IDEMPOTENCE"] = "off"  # Tansu's memory storage rejects it
    return env


def measure(
    label: str,
    cmd: list[str],
    port: int,
    wrk: str,
    tmp: Path,
    seconds: int,
    connections: int,
    start_timeout: float,
    env: dict[str, str] | None = None,
    after: Callable[[WrkResult, float], None] | None = None,
    profile: bool = False,
    extra_pids: tuple[int, ...] = (),
) -> WrkResult:
    """Start the server, check it answers a GIF, run wrk, call ``after`` (still running), stop."""
    log = tmp / f"{label}.log"
    url = f"http://127.0.0.1:{port}{PATH}"
    with process(cmd, log, env=env) as proc:
        first = wait_http(url, proc, log, timeout=start_timeout)
        if (
            first.status != 200
            or first.content_type != "image/gif"
            or not first.body.startswith(b"GIF")
        ):
            raise BenchError(
                f"{label} answered {first.status} {first.content_type!r} {first.body[:20]!r}, not a GIF"
            )
        if label == "serve":  # the workers answer pixels before the main process has migrated
            _wait_ready(f"http://127.0.0.1:{port}/healthz", proc, log, start_timeout)
        started = time.monotonic()
        spy = profiler.start(proc.pid, seconds, tmp / f"{label}.pyspy") if profile else None
        pids = [proc.pid, *extra_pids, *descendants(proc.pid)]
        before = cpu_ticks(pids)
        result = run_wrk(wrk, url, seconds=seconds, connections=connections)
        after_ticks = cpu_ticks(pids)
        report_cpu(label, pids, before, after_ticks, result.requests)
        if profile:
            for line in profiler.finish(spy, tmp / f"{label}.pyspy", timeout=seconds + 30):
                print(f"pixel {label} {line}", flush=True)
        if after is not None:
            after(result, started)
        return result


_CLK = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (collector workers, the embedded broker)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                kids = [int(c) for c in (task / "children").read_text().split()]
                out += kids
                todo += kids
    return out


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime + stime of each process still there, in clock ticks."""
    out: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            out[pid] = int(fields[11]) + int(fields[12])
    return out


def process_label(pid: int) -> str:
    try:
        cmd = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return str(pid)
    if "tansu" in cmd or "calfkit" in cmd:
        return "broker"
    if "spawn_main" in cmd:
        return "worker"
    if "resource_tracker" in cmd:
        return "tracker"
    return "main"


def report_cpu(
    label: str, pids: list[int], before: dict[int, int], after: dict[int, int], requests: int
) -> None:
    """CPU time a request of the server's processes (and the broker's) during the wrk run:
    steadier than req/s on a shared box, where other work takes the cores."""
    if requests <= 0:
        return
    per: dict[str, float] = {}
    for pid in pids:
        if pid in before and pid in after:
            name = process_label(pid)
            per[name] = per.get(name, 0.0) + (after[pid] - before[pid]) / _CLK / requests * 1e6
    total = sum(per.values())
    parts = ", ".join(f"{name} {us:.1f}" for name, us in sorted(per.items()))
    load = "?"
    with contextlib.suppress(OSError):
        load = Path("/proc/loadavg").read_text().split()[0]
    figure(f"pixel.{label}.cpu_us", total, "µs CPU/request", f"{parts}; load {load}", digits=1)


def _wait_ready(url: str, proc: Any, log: Path, timeout: float) -> None:
    """Until ``url`` answers 200 (serve's main process has started: chDB, migrations)."""
    deadline = time.monotonic() + timeout
    while wait_http(url, proc, log, timeout).status != 200:
        if time.monotonic() > deadline:
            raise BenchError(f"{url} not ready within {timeout:g}s")
        time.sleep(0.2)


def sql_count(port: int, token: str, sql: str) -> int:
    """One integer from ``POST /api/sql`` of a running serve."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/sql", data=sql.encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(json.loads(r.read())["rows"][0][0])


def drain(port: int, token: str, expected: int, timeout: float = 120.0) -> tuple[int, float]:
    """Wait until ``expected`` hits are queryable (or the count stops growing for 15 s)."""
    sql = "SELECT count() FROM clickstream.hits FINAL"
    deadline, last, last_change = time.monotonic() + timeout, -1, time.monotonic()
    while True:
        try:
            count = sql_count(port, token, sql)
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise BenchError(f"/api/sql failed while draining: {exc}") from exc
        now = time.monotonic()
        if count >= expected:
            return count, now
        if count != last:
            last, last_change = count, now
        if now - last_change > 15 or now > deadline:
            return count, now
        time.sleep(0.25)


def _ratio(a: WrkResult | None, b: WrkResult | None) -> float | None:
    if a is None or b is None or b.requests_per_s <= 0:
        return None
    return a.requests_per_s / b.requests_per_s


RATIOS = (
    # name, numerator, denominator, target (minimum), note
    ("serve / nginx (1 worker)", "serve", "nginx1", 0.25, "issue 9 target"),
    ("serve / bare ASGI", "serve", "bare", None, ""),
    ("collector / bare ASGI", "collector", "bare", 0.8, "issue 9 target, 1 worker each"),
    ("collector, ASGI path / bare", "collector_asgi", "bare", None, "pixel_fast_path off"),
    ("bare ASGI / nginx (1 worker)", "bare", "nginx1", None, "DESIGN.md: about 0.16-0.19 here"),
    ("nginx 2 workers / 1 worker", "nginx2", "nginx1", None, ""),
)


def ratio_table(results: dict[str, WrkResult | None]) -> list[str]:
    lines = [f"{'ratio':<30} {'value':>7}  {'target':<8} verdict"]
    for name, num, den, target, note in RATIOS:
        value = _ratio(results.get(num), results.get(den))
        shown = "n/a" if value is None else f"{value:.3f}"
        tgt = f">= {target:g}" if target is not None else ""
        verdict = ""
        if target is not None:
            verdict = "n/a" if value is None else ("MET" if value >= target else "MISSED")
        rest = " ".join(part for part in (verdict, note) if part)
        lines.append(f"{name:<30} {shown:>7}  {tgt:<8} {rest}".rstrip())
        if value is not None:
            figure(f"pixel.ratio.{num}/{den}", value, "x", note, digits=3)
    return lines


TARGETS = ("nginx1", "nginx2", "bare", "collector", "collector_asgi", "serve")
LABELS = {
    "nginx1": "nginx empty_gif, 1 worker",
    "nginx2": "nginx empty_gif, 2 workers",
    "bare": "bare ASGI GIF, 1 uvicorn process",
    "collector": "clickstream collector, 1 worker, producing to Tansu",
    "collector_asgi": "the same with pixel_fast_path off (the pixel through the ASGI app)",
    "serve": "clickstream serve (default)",
}


def _serve_drain(port: int, token: str, problems: list[str]) -> Callable[[WrkResult, float], None]:
    def after(result: WrkResult, started: float) -> None:
        ended = time.monotonic()
        expected = result.requests + 1  # + the readiness probe
        count, done = drain(port, token, expected)
        figure(
            "pixel.serve.queryable_after_load_s", done - ended, "s",
            f"{count:,} of {expected:,} hits queryable in ClickHouse this long after wrk stopped",
        )  # fmt: skip
        figure(
            "pixel.serve.end_to_end", count / (done - started), "hits/s",
            "pixel -> Kafka -> sessionizer -> ClickHouse, from wrk start to the last hit queryable",
        )  # fmt: skip
        if count < expected:
            problems.append(f"only {count:,} of {expected:,} hits reached ClickHouse")
            print(f"pixel serve: FAILED: {problems[-1]}", flush=True)

    return after


@contextlib.contextmanager
def _broker(tmp: Path) -> Iterator[tuple[str, int]]:
    """An embedded Tansu broker with the hits topic, for the collector target: its
    bootstrap address and process id."""
    from clickstream.broker import BrokerError, EmbeddedBroker, ensure_topic

    try:
        with EmbeddedBroker(log_path=tmp / "tansu.log") as broker:
            asyncio.run(ensure_topic(broker.bootstrap, "clickstream.hits", 6))
            assert broker.proc is not None
            yield broker.bootstrap, broker.proc.pid
    except BrokerError as exc:
        raise BenchError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pixel", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per server (1..600)")
    parser.add_argument(
        "--connections", type=int, default=128,
        help="wrk connections, the same for every server (2..10000; default 128)",
    )  # fmt: skip
    parser.add_argument(
        "--only", default=",".join(TARGETS), help="comma list of " + ",".join(TARGETS)
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the py-spy profile of collector and serve"
    )
    args = parser.parse_args(argv)
    if not 2 <= args.connections <= 10_000:
        parser.error(f"--connections must be 2..10000, got {args.connections}")
    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(only) - set(TARGETS))
    if unknown:
        parser.error(
            f"--only: unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}"
        )
    tools = ensure_debian_packages({"nginx": "nginx-light", "wrk": "wrk"})
    results: dict[str, WrkResult | None] = {}
    failed = False
    token = secrets.token_hex(16)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-pixel-") as name:
        tmp = Path(name)
        for target in only:
            port = free_port()
            env, after = None, None
            extra_pids: tuple[int, ...] = ()
            if target in ("collector", "collector_asgi", "serve") and not (
                serve_available() and cli_available()
            ):
                print(
                    f"pixel {target}: not measured (clickstream/cli.py and serve.py not there yet)"
                )
                results[target] = None
                continue
            try:
                with contextlib.ExitStack() as stack:
                    if target.startswith("nginx"):
                        cmd, wait = nginx_command(tools["nginx"], tmp, port, int(target[-1])), 10.0
                    elif target == "bare":
                        cmd, wait = bare_command(port), 30.0
                    elif target.startswith("collector"):
                        bootstrap, broker_pid = stack.enter_context(_broker(tmp))
                        extra_pids = (broker_pid,)
                        cmd, wait = collector_command(port, bootstrap), 60.0
                        env = role_env(tmp / f"{target}-data", token, collector=True)
                        if target == "collector_asgi":
                            env["CLICKSTREAM_PIXEL_FAST_PATH"] = "off"
                    else:
                        cmd, wait = serve_command(port, tmp / "serve-data"), 120.0
                        env = role_env(tmp / "serve-data", token, collector=False)
                        after = _serve_drain(port, token, problems)
                    r = measure(
                        target, cmd, port, tools["wrk"], tmp, args.seconds, args.connections, wait, env, after,
                        profile=env is not None and target != "collector_asgi" and not args.no_profile,
                        extra_pids=extra_pids,
                    )  # fmt: skip
            except BenchError as exc:
                print(f"pixel {target}: FAILED: {exc}", flush=True)
                results[target], failed = None, True
                continue
            results[target] = r
            figure(
                f"pixel.{target}", r.requests_per_s, "req/s",
                f"{LABELS[target]}; p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
                f"{r.requests:,} requests, {r.errors} errors ({r.non_2xx} non-2xx, {r.timeouts} timeouts)",
            )  # fmt: skip
    print()
    for line in ratio_table(results):
        print(line)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
