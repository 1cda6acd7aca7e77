"""End to end: import a real log into a running `clickstream serve`; re-importing it changes no count."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from clickstream.broker import free_port
from sessionizer.enrich import _ua
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


def import_log(bootstrap: str, path: Path = SAMPLE, site: str = "semi", *extra: str) -> str:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "clickstream.cli",
            "import-log",
            str(path),
            "--site",
            site,
            "--kafka",
            bootstrap,
            "--no-progress",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "CLICKSTREAM_API_TOKEN": "test-token"},
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
        # bots are flagged by the live pipeline's classifier, not dropped at import
        bot_sessions = len(
            {(h.visitor_id, h.ts // 3_600_000) for h in hits if _ua(h.user_agent)[4]}
        )
        assert bot_sessions == sessions_row[5] == 39  # UA parser + crawler-user-agents list
        import_log(bootstrap)
        wait_consumed(serve, 248)
        serve.flush()
        assert counts(serve) == first
        # site search in a log URL is a search for the sessionizer, as for live hits
        search_log = tmp_path / "search.log"
        line = '198.51.100.4 - - [18/May/2015:10:00:0{} +0000] "GET {} HTTP/1.1" 200 1 "-" "Mozilla/5.0 Firefox/120.0"\n'
        search_log.write_text(
            line.format(0, "/search?q=red+shoes") + line.format(9, "/search?q=shoes")
        )
        import_log(bootstrap, search_log, "srch")
        wait_consumed(serve, 250)
        serve.flush()
        assert serve.sql(
            "SELECT search_query, is_dead_end_search FROM clickstream.hits FINAL "
            "WHERE site = 'srch' ORDER BY ts"
        ) == [["red shoes", 1], ["shoes", 1]]
        assert serve.sql(
            "SELECT searches, dead_end_searches FROM clickstream.sessions FINAL WHERE site = 'srch'"
        ) == [[2, 2]]
    finally:
        serve.stop()


def test_skip_tracked_skips_the_page_view_the_pixel_recorded(tmp_path: Path) -> None:
    port = free_port()
    serve = start_serve(tmp_path / "data", "--broker-port", str(port))
    try:
        r = httpx.get(
            f"{serve.url}/p.gif", params={"s": "both", "u": "https://shop.example/item?id=7"}
        )
        assert r.status_code == 200
        deadline = time.monotonic() + 60
        while not (
            rows := serve.sql(
                "SELECT toUnixTimestamp64Milli(ts), ip FROM clickstream.hits FINAL "
                "WHERE site = 'both'"
            )
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        ((ts_ms, ip),) = rows
        assert ip == "127.0.0.0"  # the collector truncates 127.0.0.1 to its /24
        when = dt.datetime.fromtimestamp(ts_ms // 1000 + 3, dt.UTC).strftime(
            "%d/%b/%Y:%H:%M:%S +0000"
        )
        frame = '127.0.0.1 - - [{}] "GET {} HTTP/1.1" 200 1 "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"\n'
        log = tmp_path / "both.log"
        log.write_text(frame.format(when, "/item?id=7") + frame.format(when, "/other"))
        before = consumed(serve)
        out = import_log(f"127.0.0.1:{port}", log, "both", "--skip-tracked", "--url", serve.url)
        assert "imported:   1" in out and "  tracked: 1  " in out
        wait_consumed(serve, before + 1)
        serve.flush()
        assert sorted(
            serve.sql("SELECT source, path FROM clickstream.hits FINAL WHERE site = 'both'")
        ) == [["log", "/other"], ["pixel", "/item"]]
    finally:
        serve.stop()
