"""Hypothesis against a running ``clickstream serve``, driven by its own /openapi.json,
plus raw-byte fuzzing of the pixel and the beacon: zero 5xx, zero process exits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Served, start_serve
from tests.resilience.rawhttp import exchange

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=200
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(TEXT, inner, max_size=8),
    max_leaves=40,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = start_serve(tmp_path_factory.mktemp("fuzz") / "data")
    try:
        yield s
    finally:
        assert s.stop() == 0, s.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def spec(served: Served) -> dict[str, Any]:
    r = httpx.get(f"{served.url}/openapi.json")
    assert r.status_code == 200
    return r.json()


def _value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly hostile values, sometimes valid ones, for one parameter's schema."""
    valid: st.SearchStrategy[Any] = TEXT
    if "pattern" in schema:
        valid = st.from_regex(schema["pattern"], fullmatch=True)
    elif "enum" in schema:
        valid = st.sampled_from(schema["enum"])
    elif schema.get("type") == "integer":
        valid = st.integers(0, 2**53).map(str)
    hostile = TEXT | st.integers(-(2**70), 2**70).map(str) | st.just("") | st.text(max_size=3000)
    return valid | hostile


def _params(op: dict[str, Any]) -> st.SearchStrategy[dict[str, str]]:
    params = op.get("parameters", [])
    return st.fixed_dictionaries(
        {p["name"]: _value(p["schema"]) for p in params if p.get("required")},
        optional={p["name"]: _value(p["schema"]) for p in params if not p.get("required")},
    )


def _check(served: Served, r: httpx.Response) -> None:
    assert r.status_code < 500, (
        r.request.method,
        str(r.request.url)[:300],
        r.status_code,
        r.text[:300],
    )
    assert served.proc.poll() is None


def test_spec_lists_the_public_routes(spec: dict[str, Any]) -> None:
    assert sorted(spec["paths"]) == [
        "/api/flush",
        "/api/sql",
        "/collect",
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/optout",
        "/p.gif",
        "/r",
        "/t.js",
    ]


def test_every_get_route_with_generated_parameters(served: Served, spec: dict[str, Any]) -> None:
    gets = [(path, ops["get"]) for path, ops in spec["paths"].items() if "get" in ops]
    strategy = st.sampled_from(gets).flatmap(
        lambda po: st.tuples(st.just(po[0]), _params(po[1]), HEADER_TEXT, HEADER_TEXT)
    )

    with httpx.Client(base_url=served.url, timeout=30) as client:

        @FUZZ
        @given(strategy)
        def run(case: tuple[str, dict[str, str], str, str]) -> None:
            path, params, cookie, ua = case
            # httpx refuses header values with outer whitespace: raw-socket tests cover those
            headers = {
                "cookie": f"_cs_vid={cookie}".strip().encode("latin-1"),
                "user-agent": ua.strip().encode("latin-1"),
            }
            r = client.get(path, params=params, headers=headers)
            _check(served, r)
            if path == "/p.gif":
                assert r.status_code == 200 and r.content[:6] == b"GIF89a"

        run()


def test_beacon_with_generated_bodies(served: Served, spec: dict[str, Any]) -> None:
    event = spec["paths"]["/collect"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["oneOf"][0]
    fields = {
        name: _value(schema)
        for name, schema in event["properties"].items()
        if name not in ("props", "s", "u")
    }
    events = st.fixed_dictionaries(
        {"s": _value(event["properties"]["s"])},
        optional={
            **fields,
            "props": st.dictionaries(TEXT, JSON, max_size=40),
            "u": st.just("https://f.example/x") | TEXT,
        },
    )
    body = events.map(lambda e: e) | st.lists(events | JSON, max_size=120) | JSON

    with httpx.Client(base_url=served.url, timeout=30) as client:

        @FUZZ
        @given(
            body,
            st.sampled_from(
                ["text/plain", "application/json", "application/x-www-form-urlencoded"]
            ),
        )
        def run(doc: Any, content_type: str) -> None:
            import orjson

            r = client.post(
                "/collect", content=orjson.dumps(doc), headers={"content-type": content_type}
            )
            _check(served, r)
            assert r.status_code in (204, 400, 413)

        run()


def test_admin_routes_with_generated_bodies(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=60) as client:

        @settings(FUZZ, max_examples=60)
        @given(
            TEXT
            | st.sampled_from(
                [
                    "SELECT 1",
                    "SELECT count() FROM clickstream.hits FINAL",
                    "DROP TABLE clickstream.hits",
                    "SELECT 1; SELECT 2",
                ]
            ),
            st.sampled_from(["Bearer test-token", "Bearer wrong", "", "Basic x"]),
        )
        def run(sql: str, auth: str) -> None:
            headers = {"authorization": auth} if auth else {}
            r = client.post("/api/sql", content=sql.encode(), headers=headers)
            _check(served, r)
            assert r.status_code in ((200, 400) if auth == "Bearer test-token" else (401,))

        run()
    assert served.sql("SELECT count() > -1 FROM clickstream.hits FINAL") == [
        [True]
    ]  # table still there


def test_raw_bytes_after_the_pixel_and_beacon_request_lines(served: Served) -> None:
    port = int(urlsplit(served.url).port or 0)

    @FUZZ
    @given(
        st.binary(max_size=2000),
        st.sampled_from([b"GET /p.gif?", b"POST /collect?", b"GET /p.gif?s=f&u="]),
        st.binary(max_size=3000),
    )
    def run(target: bytes, prefix: bytes, body: bytes) -> None:
        raw = (
            prefix
            + target
            + b" HTTP/1.1\r\nHost: f\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        status, out = exchange(port, raw)
        assert status is not None and status < 500, out[:300]
        assert served.proc.poll() is None

    run()
