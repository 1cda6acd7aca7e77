"""Hypothesis fuzz of the pixel and the beacon (parameters, bodies, headers): no 5xx, the
pixel always the GIF, every accepted Hit valid and within its limits."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream import hit as H
from clickstream.hit import Hit
from collector.hot import GIF
from tests.privacy.collect import collector

KEYS = [
    "s",
    "u",
    "r",
    "e",
    "t",
    "q",
    "n",
    "uid",
    "vid",
    "cts",
    "sts",
    "nav",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "x_revenue",
    "x_a",
    "props",
    "site",
    "url",
    "event",
    "ua",
    "search_results",
]
GOOD = {"s": "shop", "u": "https://shop.example/p?q=1"}
text = st.text(max_size=300) | st.sampled_from(
    [
        "",
        "shop",
        "https://shop.example/",
        "0",
        "-1",
        "99999999999999999",
        "navigate",
        "back_forward",
        "a" * 3000,
        "\x00",
        "é",
        "1e3",
    ]
)
keys = st.sampled_from(KEYS) | st.text(min_size=1, max_size=20)
header_value = st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
headers = st.dictionaries(
    st.sampled_from(
        [
            "user-agent",
            "referer",
            "cookie",
            "dnt",
            "sec-gpc",
            "origin",
            "x-forwarded-for",
            "content-type",
            "accept-language",
        ]
    ),
    header_value
    | st.sampled_from([b"1", b"_cs_vid=" + b"a" * 32, b"_cs_optout=1", b"https://shop.example/p"]),
    max_size=5,
)
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=20,
)
events = st.dictionaries(keys, json_value, max_size=12).map(
    lambda d: {**GOOD, **d} if len(d) % 2 else d
)
body = (
    events.map(orjson.dumps)
    | st.lists(events, max_size=5).map(orjson.dumps)
    | st.binary(max_size=500)
    | json_value.map(orjson.dumps)
)
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_valid(hits: list[Hit]) -> None:
    for h in hits:
        h.check()  # raises on any type or limit broken
        assert Hit.from_json(h.to_json()) == h
        assert h.url.startswith(("http://", "https://")) and len(h.url) <= 2000
        assert not h.referrer or h.referrer.startswith(("http://", "https://"))
        assert len(h.props) <= 30 and len(h.user_agent) <= H.MAX_UA and len(h.ip) <= 64
        assert all(c >= " " for f in (h.title, h.search_query, h.crm_id, h.utm_source) for c in f)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@FUZZ
@given(params=st.dictionaries(keys, text, max_size=14), hdrs=headers, good=st.booleans())
def test_pixel_fuzz(
    tmp_path_factory, params: dict[str, str], hdrs: dict[str, bytes], good: bool
) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("fz")

    async def go() -> None:
        c, sink, _ = collector(tmp, "[site.anon]\ncookieless = true\n")
        async with c:
            r = await c.get("/p.gif", params={**GOOD, **params} if good else params, headers=hdrs)
            assert r.status_code == 200 and r.content == GIF
            assert (
                r.headers["content-type"] == "image/gif"
                and "no-store" in r.headers["cache-control"]
            )
        assert len(sink) <= 1
        assert_valid(sink)

    run(go())


@FUZZ
@given(raw=st.binary(max_size=300), hdrs=headers)
def test_pixel_raw_query_fuzz(tmp_path_factory, raw: bytes, hdrs: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("fz")
    query = "".join(f"%{b:02X}" if b not in b"&=" else chr(b) for b in raw)

    async def go() -> None:
        c, sink, _ = collector(tmp)
        async with c:
            r = await c.get("/p.gif?s=shop&u=https%3A%2F%2Fa.example%2F&" + query, headers=hdrs)
            assert r.status_code == 200 and r.content == GIF
        assert_valid(sink)

    run(go())


@FUZZ
@given(
    data=body,
    hdrs=headers,
    method=st.sampled_from(["POST", "POST", "POST", "OPTIONS", "GET", "PUT"]),
)
def test_beacon_fuzz(tmp_path_factory, data: bytes, hdrs: dict[str, bytes], method: str) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("fz")

    async def go() -> None:
        c, sink, _ = collector(tmp, max_batch_events="4")
        async with c:
            r = await c.request(method, "/collect", content=data, headers=hdrs)
        assert r.status_code in (204, 400, 405, 413), r.status_code
        if r.status_code == 400:
            assert isinstance(r.json()["errors"], list) and sink == []
        assert len(sink) <= 4
        assert_valid(sink)

    run(go())
