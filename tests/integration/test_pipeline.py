"""End to end with the real Tansu broker and real chDB: `clickstream serve` as users run it."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from clickstream.settings import load
from tests.conftest import Served, start_serve


def wait_for(fn, timeout: float = 30.0, every: float = 0.3):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def test_pixel_and_beacon_from_one_cookie_make_one_session(serve: Served) -> None:
    with httpx.Client(base_url=serve.url) as browser:
        r = browser.get("/p.gif", params={"s": "it", "u": "https://shop.example/", "t": "Home"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        vid = browser.cookies["_cs_vid"]
        r = browser.post(
            "/collect",
            content=b'{"s":"it","u":"https://shop.example/p/1"}',
            headers={"content-type": "text/plain"},
        )
        assert r.status_code == 204
    rows = wait_for(
        lambda: (
            serve.sql(
                "SELECT visitor_id, pageviews, hits, paths, entry_path, exit_path FROM clickstream.sessions FINAL "
                "WHERE site = 'it'"
            )
            if serve.sql("SELECT count() FROM clickstream.hits FINAL WHERE site = 'it'")[0][0] == 2
            else None
        )
    )
    assert rows == [[vid, 2, 2, ["/", "/p/1"], "/", "/p/1"]]
    serve.flush()
    rows = serve.sql(
        "SELECT count(), any(is_closed), any(pageviews) FROM clickstream.sessions FINAL WHERE site = 'it'"
    )
    assert rows == [[1, 1, 2]]
    hits = serve.sql(
        "SELECT seq, path, prev_page, next_page, session_id != '' FROM clickstream.hits FINAL "
        "WHERE site = 'it' ORDER BY seq"
    )
    assert hits == [[1, "/", "", "/p/1", True], [2, "/p/1", "/", "", True]]


def test_malformed_requests_never_reach_the_tables(serve: Served) -> None:
    bad = [
        "/p.gif?u=https://x.example/",
        "/p.gif?s=it2&u=ftp://x",
        "/p.gif?s=it2&u=https://x.example/&n=-3",
        "/p.gif?s=it2&u=%ff",
        "/p.gif?s=%3Cscript%3E&u=https://x.example/",
    ]
    with httpx.Client(base_url=serve.url) as c:
        for path in bad:
            r = c.get(path)
            assert r.status_code == 200 and r.content[:6] == b"GIF89a"
        r = c.post("/collect", content=b"x" * 70_000)
        assert r.status_code == 413
        c.get("/p.gif?s=it2&u=https://x.example/ok")
        metrics = c.get("/metrics").text
    serve.flush()
    assert serve.sql("SELECT path FROM clickstream.hits FINAL WHERE site = 'it2'") == [["/ok"]]
    for reason in ("missing_site", "bad_url", "bad_n", "bad_site", "body_too_large"):
        assert f'clickstream_hits_dropped_total{{reason="{reason}"}} 1' in metrics


def test_sql_api_refuses_writes_and_needs_the_token(serve: Served) -> None:
    auth = {"Authorization": f"Bearer {serve.token}"}
    with httpx.Client(base_url=serve.url) as c:
        assert c.post("/api/sql", content="SELECT 1").status_code == 401
        assert (
            c.post(
                "/api/sql", content="SELECT 1", headers={"Authorization": "Bearer wrong"}
            ).status_code
            == 401
        )
        assert c.post("/api/flush").status_code == 401
        for stmt in (
            "INSERT INTO clickstream.hits (site) VALUES ('x')",
            "ALTER TABLE clickstream.hits DELETE WHERE 1",
            "DROP TABLE clickstream.hits",
            "SYSTEM FLUSH LOGS",
            "SELECT 1; DROP TABLE clickstream.hits",
            "CREATE TABLE clickstream.x (a Int8) ENGINE=Memory",
        ):
            r = c.post("/api/sql", content=stmt, headers=auth)
            assert r.status_code == 400, stmt
            assert "error" in r.json() and r.json()["error"]
        r = c.post("/api/sql", content="SELECT 1 AS one, 'a' AS two", headers=auth)
        assert r.json() == {"columns": ["one", "two"], "rows": [[1, "a"]]}
        # the readonly lock is ClickHouse's own, not only the statement check
        r = c.post(
            "/api/sql", content="SELECT * FROM clickstream.hits SETTINGS readonly=0", headers=auth
        )
        assert r.status_code == 400
    assert serve.sql("EXISTS TABLE clickstream.hits") == [[1]]


def test_sigterm_during_traffic_loses_nothing(tmp_path: Path) -> None:
    served = start_serve(tmp_path / "data")
    answered: list[str] = []
    stop = threading.Event()

    def traffic(n: int) -> None:
        with httpx.Client(base_url=served.url, timeout=10) as c:
            i = 0
            while not stop.is_set():
                url = f"https://t.example/v{n}/p{i}"
                try:
                    r = c.get("/p.gif", params={"s": "term", "u": url, "vid": f"visitor{n:04d}"})
                except httpx.HTTPError:
                    return  # server gone: this request was not answered
                if r.status_code == 200:
                    answered.append(url)
                i += 1

    threads = [threading.Thread(target=traffic, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(answered) >= 60, timeout=60, every=0.1)
    served.proc.send_signal(signal.SIGTERM)
    stop.set()
    for t in threads:
        t.join()
    assert served.proc.wait(120) == 0
    assert len(answered) > 50
    again = start_serve(tmp_path / "data")  # the same chDB files, read through the API
    try:
        stored = again.sql("SELECT url FROM clickstream.hits FINAL WHERE site = 'term'")
        assert sorted(r[0] for r in stored) == sorted(answered)
        sessions = again.sql(
            "SELECT visitor_id, hits, is_closed FROM clickstream.sessions FINAL "
            "WHERE site = 'term' ORDER BY visitor_id"
        )
        assert [s[2] for s in sessions] == [1, 1, 1, 1]
        assert sum(s[1] for s in sessions) == len(answered)
    finally:
        again.stop()


def test_cli_commands_find_the_running_serve(serve: Served, tmp_path: Path) -> None:
    """sql, report and import-log without --url/--kafka reach the serve of the same --data."""
    import os
    import subprocess
    import sys

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clickstream.cli", *argv, "--data", str(serve.data)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CLICKSTREAM_API_TOKEN": serve.token},
        )

    log = tmp_path / "access.log"
    log.write_text(
        '203.0.113.9 - - [10/Nov/2026:10:00:00 +0000] "GET /from-log HTTP/1.1" 200 12 "-" '
        '"Mozilla/5.0 (X11; Linux x86_64) Firefox/127.0"\n'
    )
    imported = cli("import-log", str(log), "--site", "found", "--no-progress")
    assert imported.returncode == 0, imported.stderr
    serve.flush()
    out = cli(
        "sql", "SELECT path FROM clickstream.hits FINAL WHERE site = 'found'", "--format", "csv"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["path", "/from-log"]
    report = cli(
        "report",
        "overview",
        "--site",
        "found",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--format",
        "json",
    )
    assert report.returncode == 0, report.stderr
    assert '"pageviews": 1' in report.stdout.replace(" ", "").replace(
        '"pageviews":1', '"pageviews": 1'
    )
    serve.stop()
    gone = cli("sql", "SELECT 1")
    assert gone.returncode == 2 and "no running `clickstream serve`" in gone.stderr


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _children(pid: int) -> list[int]:
    return [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]


def test_serve_workers_answer_first_the_main_process_yields(serve: Served) -> None:
    """main_nice (default 19): the main process (sessionizer, chDB) runs nicer than the
    collector workers and the broker, which keep the priority serve was started with."""
    base = _nice(os.getpid())
    assert _nice(serve.proc.pid) == min(19, base + load(flags={}, env={}).main_nice)
    assert load(flags={}, env={}).main_nice == 19
    kids = _children(serve.proc.pid)
    workers = [p for p in kids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(workers) == max(1, os.cpu_count() or 1)  # one collector worker per core
    assert all(_nice(p) == base for p in kids)
