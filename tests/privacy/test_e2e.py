"""End to end: `clickstream serve` with the real Tansu broker and chDB. Identify through
the CLI, customer sessions through resolved_sessions, erase through the API, export through
the CLI, then a full replay of the topic (new consumer group) that must not bring the
erased customer back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson

from clickstream.broker import EmbeddedBroker
from tests.conftest import ROOT, Served, start_serve

HOUR = 3_600_000


def wait_for(fn, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def cli(serve: Served, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLICKSTREAM_API_TOKEN": serve.token}
    return subprocess.run(
        [sys.executable, "-m", "clickstream.cli", *args, "--url", serve.url],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def metric(serve: Served, name: str) -> float:
    text = httpx.get(f"{serve.url}/metrics", timeout=10).text
    m = re.search(rf"^clickstream_{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def visit(browser: httpx.Client, path: str, hours_ago: float = 0, **extra: str) -> None:
    now = int(time.time() * 1000)
    params = {
        "s": "shop",
        "u": f"https://shop.example{path}",
        "cts": str(now - int(hours_ago * HOUR)),
        "sts": str(now),
        **extra,
    }
    r = browser.get("/p.gif", params=params)
    assert r.status_code == 200 and r.content[:6] == b"GIF89a"


def test_identify_erase_export_and_replay(kafka: EmbeddedBroker, tmp_path: Path) -> None:
    topic = "privacy." + uuid.uuid4().hex[:8]
    common = (
        "--kafka",
        kafka.bootstrap,
        "--kafka-idempotence",
        "off",
        "--topic",
        topic,
        "--topic-partitions",
        "3",
    )
    serve = start_serve(tmp_path / "data", *common, "--consumer-group", "g1")
    try:
        with (
            httpx.Client(base_url=serve.url) as phone,
            httpx.Client(base_url=serve.url) as laptop,
            httpx.Client(base_url=serve.url) as stranger,
        ):
            visit(phone, "/", 3)
            visit(phone, "/p/1", 2)  # anonymous sessions before login
            visit(phone, "/account", 0, uid="c1")  # login
            visit(laptop, "/cart", 1)
            visit(stranger, "/blog", 1)
            ids = {
                name: c.cookies["_cs_vid"]
                for name, c in (("phone", phone), ("laptop", laptop), ("stranger", stranger))
            }
        wait_for(lambda: serve.sql("SELECT count() FROM clickstream.hits FINAL")[0][0] == 5)
        serve.flush()
        done = cli(serve, "identify", "--site", "shop", "--visitor", ids["laptop"], "--crm", "c1")
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout)["action"] == "link"

        rows = serve.sql(
            "SELECT visitor_id, count(), sum(pageviews) FROM clickstream.resolved_sessions "
            "WHERE site = 'shop' AND crm_id = 'c1' GROUP BY visitor_id ORDER BY visitor_id"
        )
        assert sorted(rows) == sorted([[ids["phone"], 3, 3], [ids["laptop"], 1, 1]])
        audit = serve.sql(
            "SELECT action, startsWith(actor, 'api:admin:') FROM clickstream.identity_audit"
        )
        assert audit == [["link", True]]

        r = httpx.post(
            f"{serve.url}/api/erase",
            json={"site": "shop", "crm_id": "c1"},
            headers={"Authorization": f"Bearer {serve.token}"},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "visitors": 2,
            "crm_ids": 1,
            "deleted": {
                "crm_merges": 0,
                "hits": 4,
                "identities": 2,
                "identity_audit": 1,
                "sessions": 4,
            },
        }
        gone = f"visitor_id IN ('{ids['phone']}', '{ids['laptop']}')"
        for table in ("hits", "sessions", "identities"):
            assert serve.sql(f"SELECT count() FROM clickstream.{table} WHERE {gone}") == [[0]], (
                table
            )

        out = tmp_path / "stranger.json"
        done = cli(
            serve, "export", "--site", "shop", "--visitor", ids["stranger"], "--out", str(out)
        )
        assert done.returncode == 0, done.stderr
        doc = orjson.loads(out.read_bytes())
        assert [h["path"] for h in doc["tables"]["hits"]] == ["/blog"] and len(
            doc["tables"]["sessions"]
        ) == 1
        bad = cli(serve, "erase", "--site", "shop", "--visitor", "has space")
        assert bad.returncode == 2 and bad.stderr.startswith(
            "clickstream: error: 400: visitor_id must be"
        )
        assert serve.stop() == 0
    finally:
        if serve.proc.poll() is None:
            serve.proc.kill()

    # a new consumer group reads the whole topic again: the erased customer must stay gone
    replay = start_serve(tmp_path / "data", *common, "--consumer-group", "g2")
    try:
        assert wait_for(lambda: metric(replay, "erased_sessions_dropped_total") >= 4)
        assert wait_for(
            lambda: (
                replay.sql(
                    f"SELECT count() FROM clickstream.hits WHERE visitor_id = '{ids['stranger']}'"
                )[0][0]
                >= 2
            )
        )  # rewritten
        replay.flush()
        for table in ("hits", "sessions", "identities"):
            assert replay.sql(f"SELECT count() FROM clickstream.{table} WHERE {gone}") == [[0]], (
                table
            )
        assert replay.sql("SELECT visitor_id, pageviews FROM clickstream.sessions FINAL") == [
            [ids["stranger"], 1]
        ]
    finally:
        replay.stop()


def test_an_erased_visitor_seen_again_is_a_new_visitor(tmp_path: Path) -> None:
    """Erase while the visitor's session is open: its hits from before the erasure go, the
    same cookie's later hits are kept as the first session of a new visitor (numbered 1,
    not returning), not dropped with the erased session nor numbered on from it."""
    serve = start_serve(tmp_path / "data")
    try:
        with httpx.Client(base_url=serve.url) as browser:
            visit(browser, "/old", 50)
            visit(browser, "/older", 26)  # two closed sessions
            visit(browser, "/open", 0.05, uid="c7")  # the open one, 3 minutes ago
            vid = browser.cookies["_cs_vid"]
            assert wait_for(
                lambda: serve.sql("SELECT count() FROM clickstream.hits FINAL")[0][0] == 3
            )
            assert serve.sql("SELECT max(session_number) FROM clickstream.sessions FINAL") == [[3]]
            r = httpx.post(
                f"{serve.url}/api/erase",
                json={"site": "shop", "visitor_id": vid},
                headers={"Authorization": f"Bearer {serve.token}"},
                timeout=120,
            )
            assert r.status_code == 200 and r.json()["deleted"]["sessions"] == 3, r.text
            visit(browser, "/after", 0.02)  # same cookie, same 30 minutes
            visit(browser, "/after2", 0)
        serve.flush()
        assert serve.sql(
            "SELECT visitor_id, session_number, is_returning, crm_id, paths "
            "FROM clickstream.sessions FINAL"
        ) == [[vid, 1, 0, "", ["/after", "/after2"]]]
        assert serve.sql("SELECT count() FROM clickstream.identities FINAL") == [[0]]
    finally:
        serve.stop()
