"""End to end: import a real log into a running `clickstream serve`; re-importing it changes no count."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from clickstream.broker import free_port
from tests.conftest import ROOT, Served, start_serve
from tests.importer.importlog_helpers import SAMPLE, run_import

COUNTS = {
    "hits": "SELECT count(), uniqExact(visitor_id), countIf(is_bot = 1), uniqExact(session_id) "
            "FROM clickstream.hits FINAL WHERE site = 'semi'",
    "sessions": "SELECT count(), sum(hits), sum(pageviews), countIf(is_bounce = 1), countIf(is_returning = 1), "
                "countIf(is_bot = 1), uniqExact(visitor_id) FROM clickstream.sessions FINAL WHERE site = 'semi'",
    "per_day": "SELECT toDate(start_ts) AS d, count() FROM clickstream.sessions FINAL WHERE site = 'semi' "
               "GROUP BY d ORDER BY d",
}


def import_log(bootstrap: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "import-log", str(SAMPLE), "--site", "semi",
         "--kafka", bootstrap, "--no-progress"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def consumed(serve: Served) -> int:
    text = httpx.get(f"{serve.url}/metrics", timeout=10).text
    m = re.search(r"^clickstream_sessionizer_hits_total (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def wait_consumed(serve: Served, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while consumed(serve) < n:
        assert time.monotonic() < deadline, f"sessionizer consumed {consumed(serve)} of {n} hits"
        time.sleep(0.2)


def counts(serve: Served) -> dict[str, list[list[object]]]:
    return {name: serve.sql(sql) for name, sql in COUNTS.items()}


def test_reimporting_a_log_into_serve_changes_no_count(tmp_path: Path) -> None:
    port = free_port()
    serve = start_serve(tmp_path / "data", "--broker-port", str(port))
    try:
        bootstrap = f"127.0.0.1:{port}"
        out = import_log(bootstrap)
        assert "imported:   124" in out
        wait_consumed(serve, 124)
        serve.flush()
        first = counts(serve)
        hits, _ = run_import([str(SAMPLE)], site="semi")
        # every request time in this log has minute 05: hits an hour apart are > 30 min apart,
        # so the sessions are exactly the (visitor, hour) pairs
        expected_sessions = len({(h.visitor_id, h.ts // 3_600_000) for h in hits})
        assert (expected_sessions, len({h.visitor_id for h in hits})) == (72, 56)
        hits_row, sessions_row = first["hits"][0], first["sessions"][0]
        assert hits_row[:2] == [124, 56] and hits_row[3] == 72
        assert sessions_row[:3] == [72, 124, 124] and sessions_row[6] == 56
        import_log(bootstrap)
        wait_consumed(serve, 248)
        serve.flush()
        assert counts(serve) == first
    finally:
        serve.stop()
