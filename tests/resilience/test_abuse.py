"""Hostile bytes against a running ``clickstream serve``: fixed-size answers, no 5xx, no exit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.conftest import Served, start_serve
from tests.resilience.rawhttp import exchange


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = start_serve(tmp_path_factory.mktemp("abuse") / "data")
    try:
        yield s
    finally:
        assert s.stop() == 0, s.log.read_text()[-3000:]  # still alive, and exits cleanly


def _port(s: Served) -> int:
    return int(urlsplit(s.url).port or 0)


def _get(target: bytes, *headers: bytes) -> bytes:
    return (
        b"GET "
        + target
        + b" HTTP/1.1\r\nHost: c.test\r\n"
        + b"".join(h + b"\r\n" for h in headers)
        + b"\r\n"
    )


def _post(body: bytes, content_type: bytes = b"text/plain") -> bytes:
    return (
        b"POST /collect HTTP/1.1\r\nHost: c.test\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


PIXEL = b"/p.gif?s=abuse&u=https%3A%2F%2Fshop.example%2F"
GIF = b"\r\ncontent-type: image/gif"

CASES = [
    # (name, raw request, expected status, must be a GIF)
    ("request target of 20 KB", _get(PIXEL + b"&x=" + b"a" * 20_000), 400, False),
    ("one 1 MB header", _get(PIXEL, b"X-Big: " + b"y" * 1_000_000), 400, False),
    ("200 headers", _get(PIXEL, *(b"X-%d: 1" % i for i in range(200))), 400, False),
    ("60 KB cookie", _get(PIXEL, b"Cookie: _cs_vid=" + b"z" * 60_000), 400, False),
    (
        "7 KB cookie of junk",
        _get(PIXEL, b"Cookie: a=" + b"z" * 7_000 + b"; _cs_vid=not valid!"),
        200,
        True,
    ),
    ("cookie header of 9 KB", _get(PIXEL, b"Cookie: _cs_vid=" + b"q" * 9_000), 200, True),
    ("invalid UTF-8 percent-encoded", _get(PIXEL + b"&t=%ff%fe%c3%28"), 200, True),
    ("raw non-ASCII bytes in the target", _get(PIXEL + b"&t=\xff\xfe"), 400, False),
    (
        "invalid UTF-8 in headers",
        _get(PIXEL, b"User-Agent: \xff\xfe\x80", b"Referer: \xc3\x28"),
        200,
        True,
    ),
    ("NUL in a parameter", _get(PIXEL + b"&t=a%00b"), 200, True),
    (
        "1500 x_ parameters",
        _get(
            b"/p.gif?s=abuse&u=https%3A%2F%2Fa.b%2F&"
            + b"&".join(b"x_%d=1" % i for i in range(1500))
        ),
        200,
        True,
    ),
    (
        "190 x_ parameters",
        _get(
            b"/p.gif?s=abuse&u=https%3A%2F%2Fa.b%2F&" + b"&".join(b"x_%d=1" % i for i in range(190))
        ),
        200,
        True,
    ),
    (
        "TLS client hello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 200,
        400,
        False,
    ),
    ("unknown method", b"BREW /p.gif HTTP/1.1\r\nHost: c\r\n\r\n", 400, False),
    ("HTTP/0.9 style", b"GET /p.gif\r\n\r\n", 200, True),
    ("beacon: invalid UTF-8 body", _post(b'{"s":"abuse","u":"https://a.b/\xff"}'), 400, False),
    (
        "beacon: 5000 props",
        _post(
            orjson.dumps(
                {"s": "abuse", "u": "https://a.b/", "props": {f"k{i}": "v" for i in range(5000)}}
            )
        ),
        400,
        False,
    ),
    ("beacon: deeply nested JSON", _post(b"[" * 30_000 + b"]" * 30_000), 400, False),
    (
        "beacon: nested props",
        _post(
            b'{"s":"abuse","u":"https://a.b/","props":{"a":'
            + b'{"a":' * 500
            + b"1"
            + b"}" * 501
            + b"}"
        ),
        400,
        False,
    ),
    (
        "beacon: 1000-event array",
        _post(orjson.dumps([{"s": "abuse", "u": "https://a.b/"}] * 1000)),
        400,
        False,
    ),
    ("beacon: body over the limit", _post(b"x" * 70_000), 413, False),
    (
        "beacon: lying content-length",
        b"POST /collect HTTP/1.1\r\nHost: c\r\nContent-Length: 99999999999999999999\r\n\r\n",
        400,
        False,
    ),
    (
        "beacon: chunked, endless",
        b"POST /collect HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n"
        + b"a" * 70_000,
        413,
        False,
    ),
    (
        "beacon: wrong method",
        b"PUT /collect HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\n\r\n",
        405,
        False,
    ),
    (
        "sql without token",
        b"POST /api/sql HTTP/1.1\r\nHost: c\r\nContent-Length: 8\r\n\r\nSELECT 1",
        401,
        False,
    ),
]


@pytest.mark.parametrize(("name", "raw", "status", "gif"), CASES, ids=[c[0] for c in CASES])
def test_hostile_request_gets_a_fixed_answer(
    served: Served, name: str, raw: bytes, status: int, gif: bool
) -> None:
    got, out = exchange(_port(served), raw)
    assert got == status, out[:300]
    assert (GIF in out) == gif
    assert served.proc.poll() is None


def test_slow_clients_are_cut_off_and_do_not_block_others(served: Served) -> None:
    port = _port(served)
    slow = []
    for partial in (
        b"GET /p.gif?s=abuse HTTP/1.1\r\nHost: c\r\nX-Slow: ",  # headers never end
        b'POST /collect HTTP/1.1\r\nHost: c\r\nContent-Length: 100\r\n\r\n{"s":',  # body never ends
        b"",
    ):  # connects, says nothing
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        s.sendall(partial)
        slow.append(s)
    started = time.monotonic()
    r = httpx.get(f"{served.url}{PIXEL.decode()}", timeout=5)  # others are served meanwhile
    assert r.status_code == 200 and time.monotonic() - started < 2
    closed_after = []

    def wait_closed(sock: socket.socket) -> None:
        t0 = time.monotonic()
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        closed_after.append(time.monotonic() - t0)

    threads = [threading.Thread(target=wait_closed, args=(s,)) for s in slow]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for s in slow:
        s.close()
    assert len(closed_after) == 3 and max(closed_after) < 15  # REQUEST_DEADLINE_S = 10
    metrics = httpx.get(f"{served.url}/metrics").text
    assert "clickstream_http_slow_clients_total 3" in metrics
    assert served.proc.poll() is None


def test_requests_refused_before_the_app_are_counted_by_reason(served: Served) -> None:
    # after the hostile cases above: 20 KB target; 1 MB header, 200 headers, 60 KB cookie;
    # non-ASCII target, TLS hello, unknown method and more that are not HTTP
    metrics = httpx.get(f"{served.url}/metrics").text
    counts = {
        reason: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("clickstream_http_requests_refused_total{")
        for reason in [line.split('reason="', 1)[1].split('"', 1)[0]]
    }
    assert counts.get("target_too_long", 0) >= 1, metrics
    assert counts.get("headers_too_large", 0) >= 3, metrics
    assert counts.get("malformed", 0) >= 3, metrics


def test_after_the_abuse_only_valid_hits_reached_the_tables(served: Served) -> None:
    served.flush()
    # accepted: the two oversized-but-legal cookies, the junk headers, the slow test's pixel
    assert served.sql(
        "SELECT count(), any(url) FROM clickstream.hits FINAL WHERE site = 'abuse'"
    ) == [[4, "https://shop.example/"]]
    metrics = httpx.get(f"{served.url}/metrics").text
    for reason in ("bad_encoding", "bad_chars", "too_many_params", "missing_site"):
        assert f'clickstream_hits_dropped_total{{reason="{reason}"}} 1' in metrics
    # the pixel's 190 x_ parameters and the beacon's 5000 props; two bodies over the limit
    assert 'clickstream_hits_dropped_total{reason="too_many_props"} 2' in metrics
    assert 'clickstream_hits_dropped_total{reason="body_too_large"} 2' in metrics
    assert httpx.get(f"{served.url}/healthz").status_code == 200
