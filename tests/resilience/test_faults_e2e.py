"""Acceptance: broker stopped and restarted under a running serve; collector killed with -9.

Both run the real processes (``clickstream serve`` / ``clickstream collector``) against a
Tansu broker that the test starts and stops itself on a fixed port.  Tansu's memory
storage comes back empty after a restart, so every hit of these tests is sent while
the broker is away (or read back before it goes): what must survive is the spool.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from clickstream.broker import EmbeddedBroker, free_port
from tests.conftest import ROOT, start_serve
from tests.resilience.kafka_util import read_topic

BROKER_FLAGS = ("--kafka-idempotence", "off", "--produce-timeout-s", "0.5")


def _wait(fn, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def _counters(text: str) -> dict[str, float]:
    """Prometheus text to {name without prefix: value summed over labels}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            name = name.split("{")[0].removeprefix("clickstream_")
            out[name] = out.get(name, 0) + float(value)
    return out


def _send_visits(url: str, visitors: int, pages: int, tag: str) -> list[str]:
    """Each visitor: a pixel pageview, then beacons; returns the page URLs answered."""
    answered = []
    for v in range(visitors):
        with httpx.Client(base_url=url, timeout=10) as browser:
            for p in range(pages):
                page = f"https://shop.example/{tag}/v{v}/p{p}"
                started = time.monotonic()
                if p % 2 == 0:
                    r = browser.get("/p.gif", params={"s": "fault", "u": page})
                    assert r.status_code == 200 and r.content[:6] == b"GIF89a"
                else:
                    r = browser.post("/collect", json={"s": "fault", "u": page})
                    assert r.status_code == 204, r.text
                assert time.monotonic() - started < 0.5 + 0.5  # bounded by produce_timeout_s
                answered.append(page)
    return answered


def test_broker_stopped_then_restarted_loses_and_doubles_no_hit(tmp_path: Path) -> None:
    broker = EmbeddedBroker(free_port(), log_path=tmp_path / "broker.log").start()
    served = start_serve(tmp_path / "data", "--kafka", broker.bootstrap, *BROKER_FLAGS)
    try:
        broker.stop()
        answered = _send_visits(served.url, visitors=3, pages=8, tag="down")
        assert len(answered) == 24
        spooled = httpx.get(f"{served.url}/metrics").text
        assert "clickstream_hits_spooled_total 24" in spooled
        broker.start()  # same port, empty memory storage
        assert _wait(
            lambda: (
                served.sql("SELECT count() FROM clickstream.hits FINAL WHERE site = 'fault'")
                == [[24]]
            ),
            90,
        )
        served.flush()
        assert (
            served.sql(
                "SELECT count(), uniqExact(hit_id), uniqExact(url) FROM clickstream.hits "
                "WHERE site = 'fault'"
            )[0][2]
            == 24
        )
        assert served.sql(
            "SELECT count(), uniqExact(hit_id) FROM clickstream.hits FINAL WHERE site = 'fault'"
        ) == [[24, 24]]
        assert served.sql(
            "SELECT hits, pageviews, is_closed, entry_path FROM clickstream.sessions FINAL "
            "WHERE site = 'fault' ORDER BY entry_path"
        ) == [[8, 8, 1, "/down/v0/p0"], [8, 8, 1, "/down/v1/p0"], [8, 8, 1, "/down/v2/p0"]]
        metrics = httpx.get(f"{served.url}/metrics").text
        counts = _counters(metrics)
        assert counts["hits_accepted_total"] == 24
        assert counts["hits_spooled_total"] == 24
        # a send that timed out may be acknowledged after all: replay skips it then
        assert counts["hits_replayed_total"] + counts.get("hits_delivered_late_total", 0) == 24
        assert "clickstream_spool_bytes 0" in metrics
        assert served.stop() == 0
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
        broker.stop()


def _collector(data: Path, bootstrap: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clickstream.cli",
            "collector",
            "--port",
            str(port),
            "--data",
            str(data),
            "--kafka",
            bootstrap,
            "--topic-partitions",
            "2",
            *BROKER_FLAGS,
        ],
        stdout=open(data / "collector.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "CLICKSTREAM_API_TOKEN": "t"},
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (data / "collector.log").read_text()[-2000:]
        try:
            return httpx.get(f"{url}/metrics", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert _wait(up, 60)
    return proc, url


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_collector_killed_right_after_answering_loses_no_answered_hit(tmp_path: Path) -> None:
    broker = EmbeddedBroker(free_port(), log_path=tmp_path / "broker.log").start()
    data = tmp_path / "collector"
    try:
        # 1: Kafka up; killed right after the last answer: every answered hit is in Kafka
        proc, url = _collector(data, broker.bootstrap)
        first = _send_visits(url, visitors=2, pages=10, tag="up")
        _kill9(proc)
        hits = asyncio.run(read_topic(broker.bootstrap, "clickstream.hits", 20))
        assert sorted(h.url for h in hits) == sorted(first)
        # 2: Kafka away: answered hits are on the spool when the collector is killed
        proc, url = _collector(data, broker.bootstrap)
        broker.stop()
        second = _send_visits(url, visitors=2, pages=10, tag="spooled")
        _kill9(proc)
        assert (
            sum(p.read_bytes().count(b"\n") for p in (data / "spool").glob("spool-*.jsonl")) == 20
        )
        broker.start()  # empty memory storage: what arrives now can only come from the spool
        proc, url = _collector(data, broker.bootstrap)
        assert _wait(lambda: not list((data / "spool").glob("spool-*.jsonl")), 60)
        hits = asyncio.run(read_topic(broker.bootstrap, "clickstream.hits", 20))
        assert sorted(h.url for h in hits) == sorted(second)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        broker.stop()


def test_collector_starts_and_answers_while_kafka_is_down(tmp_path: Path) -> None:
    """A collector started before its broker answers and spools; the hits arrive once Kafka does."""
    port = free_port()
    data = tmp_path / "collector"
    proc, url = _collector(data, f"127.0.0.1:{port}")  # nothing listens there yet
    broker = None
    try:
        answered = _send_visits(url, visitors=1, pages=6, tag="early")
        assert len(answered) == 6
        broker = EmbeddedBroker(port, log_path=tmp_path / "broker.log").start()
        hits = asyncio.run(read_topic(broker.bootstrap, "clickstream.hits", 6, timeout=60))
        assert sorted(h.url for h in hits) == sorted(answered)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        if broker is not None:
            broker.stop()


def test_healthz_fails_while_the_broker_is_gone_and_sigterm_still_stops_serve(
    tmp_path: Path,
) -> None:
    """/healthz asks Kafka itself (the clients retry quietly and kept saying ok); with the
    broker gone a SIGTERM still closes and writes every session and exits (the offset
    commit waited for a coordinator forever); the next start finds the session written."""
    broker = EmbeddedBroker(free_port(), log_path=tmp_path / "broker.log").start()
    served = start_serve(tmp_path / "data", "--kafka", broker.bootstrap, *BROKER_FLAGS)
    try:
        with httpx.Client(base_url=served.url, timeout=10) as browser:
            assert (
                browser.get(
                    "/p.gif", params={"s": "fault", "u": "https://shop.example/up"}
                ).status_code
                == 200
            )
        assert _wait(
            lambda: served.sql("SELECT count() FROM clickstream.hits WHERE site = 'fault'") == [[1]]
        )
        assert httpx.get(f"{served.url}/healthz").status_code == 200
        broker.stop()
        health = _wait(
            lambda: (r := httpx.get(f"{served.url}/healthz", timeout=10)).status_code == 503 and r,
            10,
        )
        assert health and health.json()["checks"]["broker"].startswith("unreachable"), health
        started = time.monotonic()
        assert served.stop(timeout=60) == 0, served.log.read_text()[-3000:]
        assert time.monotonic() - started < 45
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
        broker.stop()
    broker.start()
    again = start_serve(tmp_path / "data", "--kafka", broker.bootstrap, *BROKER_FLAGS)
    try:
        assert again.sql(
            "SELECT paths, is_closed FROM clickstream.sessions FINAL WHERE site = 'fault'"
        ) == [[["/up"], 1]]
        assert httpx.get(f"{again.url}/healthz").status_code == 200
        assert again.stop() == 0
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
        broker.stop()
