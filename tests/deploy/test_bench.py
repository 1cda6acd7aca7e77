"""The bench harness: wrk parsing, discovery, the capped runner, and the pixel wiring."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.__main__ import discover, run_one, summary
from bench.common import BenchError, WrkResult, parse_wrk, run_wrk
from bench.pixel import (
    GIF,
    bare_command,
    collector_command,
    cpu_ticks,
    descendants,
    measure,
    nginx_command,
    process_label,
    ratio_table,
    report_cpu,
    role_env,
    serve_command,
)

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:40000/p.gif?s=bench&u=https://a.example/x
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   824.11us    1.02ms  31.37ms   93.52%
    Req/Sec    26.29k     3.14k   33.10k    70.50%
  Latency Distribution
     50%  585.00us
     75%  0.92ms
     90%    1.51ms
     99%    5.92ms
  523925 requests in 10.04s, 178.89MB read
Requests/sec:  52165.58
Transfer/sec:     17.81MB
"""


def test_parse_wrk_reads_rate_count_and_latency() -> None:
    assert parse_wrk(WRK_OUTPUT) == WrkResult(
        requests_per_s=52165.58, requests=523925, errors=0, p50_ms=0.585, p99_ms=5.92
    )


def test_parse_wrk_counts_socket_errors_and_non_2xx() -> None:
    out = WRK_OUTPUT.replace(
        "Requests/sec",
        "  Socket errors: connect 0, read 3, write 0, timeout 12\n"
        "  Non-2xx or 3xx responses: 40\nRequests/sec",
    ).replace("99%    5.92ms", "99%    1.20s")
    r = parse_wrk(out)
    assert (r.errors, r.non_2xx, r.timeouts, r.p99_ms) == (55, 40, 12, 1200.0)


def test_parse_wrk_refuses_garbage() -> None:
    with pytest.raises(BenchError, match="unreadable wrk output"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


@pytest.mark.parametrize(("seconds", "threads", "conns"), [(0, 2, 50), (10, 0, 50), (10, 8, 4)])
def test_run_wrk_refuses_bad_parameters(seconds: int, threads: int, conns: int) -> None:
    with pytest.raises(BenchError, match="bad wrk parameters"):
        run_wrk("wrk", "http://127.0.0.1:1/", seconds, threads, conns)


def test_nginx_config_and_worker_limits(tmp_path: Path) -> None:
    cmd = nginx_command("/usr/sbin/nginx", tmp_path, 40123, 2)
    conf = (tmp_path / "nginx-2.conf").read_text()
    assert cmd == ["/usr/sbin/nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx-2.conf"),
                   "-e", str(tmp_path / "error.log")]  # fmt: skip
    assert "worker_processes 2;" in conf
    assert "listen 127.0.0.1:40123;" in conf
    assert "location = /p.gif { empty_gif;" in conf
    with pytest.raises(BenchError, match="nginx workers must be 1..64"):
        nginx_command("/usr/sbin/nginx", tmp_path, 40123, 0)


def test_serve_command_runs_this_checkout(tmp_path: Path) -> None:
    cmd = serve_command(40124, tmp_path)
    assert cmd[0] == sys.executable
    assert cmd[3:] == ["serve", "--host", "127.0.0.1", "--port", "40124", "--data", str(tmp_path)]


def test_collector_command_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cmd = collector_command(40125, "127.0.0.1:9092")
    assert cmd[3:] == ["collector", "--host", "127.0.0.1", "--port", "40125",
                       "--kafka", "127.0.0.1:9092"]  # fmt: skip
    monkeypatch.delenv("CLICKSTREAM_WORKERS", raising=False)
    env = role_env(tmp_path, "tok", collector=True)
    assert (env["CLICKSTREAM_WORKERS"], env["CLICKSTREAM_KAFKA_IDEMPOTENCE"]) == ("1", "off")
    assert (env["CLICKSTREAM_DATA"], env["CLICKSTREAM_API_TOKEN"]) == (str(tmp_path), "tok")
    assert "CLICKSTREAM_WORKERS" not in role_env(tmp_path, "tok", collector=False)


def test_gif_is_nginx_empty_gif() -> None:
    assert len(GIF) == 43
    assert GIF.startswith(b"GIF89a\x01\x00\x01\x00") and GIF.endswith(b";")


def test_bare_app_measured_by_wrk(tmp_path: Path) -> None:
    from bench.common import ensure_debian_packages, free_port

    wrk = ensure_debian_packages({"wrk": "wrk"})["wrk"]
    port = free_port()
    r = measure(
        "bare", bare_command(port), port, wrk, tmp_path, seconds=1, connections=50, start_timeout=30
    )
    assert r.errors == 0
    assert r.requests > 0 and r.requests_per_s > 0


def test_cpu_a_request_counts_the_process_tree(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.3: pass\ntime.sleep(5)",
        ]
    )
    try:
        me = __import__("os").getpid()
        assert child.pid in descendants(me)
        before = cpu_ticks([me, child.pid, 999_999_999])  # a pid that is gone is left out
        assert set(before) == {me, child.pid}
        time.sleep(0.6)
        after = cpu_ticks([me, child.pid])
        assert after[child.pid] > before[child.pid]
        assert process_label(child.pid) == "main"
        report_cpu("probe", [me, child.pid], before, after, requests=1000)
    finally:
        child.kill()
        child.wait()
    out = capsys.readouterr().out
    assert (
        out.startswith("[figure] pixel.probe.cpu_us = ")
        and "µs CPU/request" in out
        and "; load " in out
    )


def _result(rps: float) -> WrkResult:
    return WrkResult(rps, int(rps * 10), 0, 1.0, 2.0)


def test_ratio_table_with_and_without_serve(capsys: pytest.CaptureFixture[str]) -> None:
    lines = ratio_table({"nginx1": _result(80000), "nginx2": _result(96000),
                         "bare": _result(16000), "collector": _result(14000), "serve": _result(24000),
                         "collector_asgi": _result(8000)})  # fmt: skip
    assert lines[1:] == [
        "serve / nginx (1 worker)         0.300  >= 0.25  MET issue 9 target",
        "serve / bare ASGI                1.500",
        "collector / bare ASGI            0.875  >= 0.8   MET issue 9 target, 1 worker each",
        "collector, ASGI path / bare      0.500           pixel_fast_path off",
        "bare ASGI / nginx (1 worker)     0.200           DESIGN.md: about 0.16-0.19 here",
        "nginx 2 workers / 1 worker       1.200",
    ]
    assert (
        "[figure] pixel.ratio.serve/nginx1 = 0.300 x  (issue 9 target)" in capsys.readouterr().out
    )
    lines = ratio_table({"nginx1": _result(80000), "serve": None})
    assert lines[1] == "serve / nginx (1 worker)           n/a  >= 0.25  n/a issue 9 target"
    lines = ratio_table({"nginx1": _result(80000), "serve": _result(8000)})
    assert lines[1] == "serve / nginx (1 worker)         0.100  >= 0.25  MISSED issue 9 target"


def _package(tmp_path: Path, name: str, modules: dict[str, str]) -> Path:
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for mod, body in modules.items():
        (pkg / f"{mod}.py").write_text(textwrap.dedent(body))
    return pkg


def test_discover_puts_pixel_first_and_needs_main(tmp_path: Path) -> None:
    pkg = _package(tmp_path, "benchdisc", {
        "reports": "def main():\n    pass\n",
        "pixel": "def main():\n    pass\n",
        "common": "def main():\n    pass\n",
        "helpers": "def run():\n    pass\n",
        "sessionizer": "async def main():\n    pass\n",
        "broken": "def main(:\n",
        "_private": "def main():\n    pass\n",
    })  # fmt: skip
    assert discover(pkg) == ["pixel", "broken", "reports", "sessionizer"]


def test_runner_keeps_going_after_failure_and_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(tmp_path, "benchrun", {
        "good": """
            from bench.common import figure
            def main():
                figure("good.rate", 1234.5, "hits/s")
                return 0
        """,
        "bad": "def main():\n    raise SystemExit(3)\n",
        "slow": "import time\ndef main():\n    time.sleep(60)\n",
        "aio": "async def main():\n    print('async ran')\n",
        "argv": "def main(argv):\n    print('argv', argv)\n",
    })  # fmt: skip
    monkeypatch.setenv("PYTHONPATH", str(Path.cwd()))  # bench.common for the temp benches
    names = ("good", "bad", "slow", "aio", "argv")
    outcomes = [run_one(n, 3, package="benchrun", cwd=tmp_path) for n in names]
    assert [o.status for o in outcomes] == [
        "ok",
        "failed (exit 3)",
        "timed out after 3s",
        "ok",
        "ok",
    ]
    assert outcomes[4].lines == ["argv []"]
    assert outcomes[0].figures == ["[figure] good.rate = 1,234.50 hits/s"]
    assert outcomes[3].lines == ["async ran"]
    text = summary(outcomes)
    assert "    [figure] good.rate = 1,234.50 hits/s" in text
    assert "    (no [figure] lines) async ran" in text
    with pytest.raises(ValueError, match="timeout must be"):
        run_one("good", 0, package="benchrun", cwd=tmp_path)


@pytest.mark.parametrize("hits", ["9999", "100000001", "many"])
def test_storage_bench_refuses_bad_sizes(hits: str, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.storage import main

    with pytest.raises(SystemExit) as exc:
        main(["--hits", hits])
    assert exc.value.code == 2
    assert "--hits" in capsys.readouterr().err


def test_pixel_bench_refuses_unknown_targets(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.pixel import main

    with pytest.raises(SystemExit) as exc:
        main(["--only", "nginx1,apache"])
    assert exc.value.code == 2
    assert "unknown target(s) apache" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--connections", "1"])
    assert exc.value.code == 2
    assert "--connections must be 2..10000, got 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["nope"], None, "unknown bench nope; available: pixel"),
        (["pixel", "--timeout", "0"], None, "must be 1..86400 seconds, got '0'"),
        (["pixel"], "abc", "must be 1..86400 seconds, got 'abc'"),
    ],
)
def test_bench_runner_refuses_bad_arguments(
    argv: list[str],
    env: str | None,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench.__main__ import main

    if env is None:
        monkeypatch.delenv("BENCH_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("BENCH_TIMEOUT", env)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bench_list(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.__main__ import main

    assert main(["--list"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "pixel"


def test_profile_summary_percentages() -> None:
    from bench.profile import summarize

    raw = (
        "run (clickstream/serve.py:152);pixel (collector/hot.py:99);to_json (clickstream/hit.py:72) 30\n"
        "run (clickstream/serve.py:152);ingest (sessionizer/loop.py:150);query (chdb/x.py:1) 50\n"
        "select (selectors.py:1) 20\n"
        "garbage line\n"
    )
    assert summarize(raw, top=2) == [
        "profile: 100 samples; self time (top 2):",
        "   50.0%  query (chdb/x.py:1)",
        "   30.0%  to_json (clickstream/hit.py:72)",
        "profile: time under our frames (top 2):",
        "   80.0%  run (clickstream/serve.py:152)",
        "   50.0%  ingest (sessionizer/loop.py:150)",
    ]
    assert summarize("") == ["profile: no samples"]


def test_targets_table_gives_each_target_its_figures_and_verdict() -> None:
    from bench.__main__ import Outcome, targets

    lines = [
        "[figure] pixel.ratio.serve/nginx1 = 0.300 x  (issue 9 target)",
        "[figure] pixel.ratio.collector/bare = 0.412 x",
        "[figure] reports.overview.90d = 0.812 s  (10,000,000 hits)",
        "[figure] reports.funnel.90d = 1,204.5 s",
        "not a figure",
    ]
    table = targets([Outcome("x", "ok", 1.0, lines)])
    text = "\n".join(table)
    assert "0.3  MET  (pixel.ratio.serve/nginx1)" in text
    assert "0.412  MISSED  (pixel.ratio.collector/bare)" in text
    assert "0.812  MET  (reports.overview.90d)" in text
    assert "1204.5  MISSED  (reports.funnel.90d)" in text
    assert sum("n/a (not measured in this run)" in line for line in table) == 3  # soak, 30d, 100M


def test_storage_bench_runs_against_the_current_schema() -> None:
    """Its inserts name their columns: a migration that adds one must not break the bench."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "bench.storage", "--hits", "10000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[figure] storage.hits.bytes_per_hit = " in done.stdout
    assert "(10,000 rows" in done.stdout
    assert "[figure] storage.sessions.bytes_per_session = " in done.stdout


def test_reports_100m_bench_refuses_bad_repeat_and_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from bench import reports_100m

    with pytest.raises(SystemExit) as exc:
        reports_100m.main(["--repeat", "0"])
    assert exc.value.code == 2
    assert "--repeat must be 1..10" in capsys.readouterr().err
    # no data kept there and too little disk: refused before generating anything
    usage = shutil.disk_usage(tmp_path)._replace(free=1 << 30)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage)
    called: list[list[str]] = []
    monkeypatch.setattr(reports_100m.reports, "main", lambda argv: called.append(argv) or 0)
    assert reports_100m.main(["--path", str(tmp_path / "data")]) == 1
    assert "needs 8 GB free" in capsys.readouterr().out
    assert called == []
    # data kept at the path: reused, whatever the disk
    (tmp_path / "data" / "metadata").mkdir(parents=True)
    (tmp_path / "data" / "metadata" / "bench.sql").write_text("")
    assert reports_100m.main(["--path", str(tmp_path / "data")]) == 0
    assert called[0][:2] == ["--hits", "100000000"] and "--reuse" in called[0]
