"""The pixel and beacon in-process, with a list as the sink (pure validation logic)."""

from __future__ import annotations

import struct
from typing import Any

import httpx
import pytest

from clickstream.hit import Hit
from clickstream.metrics import METRICS
from clickstream.settings import load
from collector.hot import GIF, Collector
from collector.validate import derived_ts


def make_client(
    client_ip: str = "203.0.113.77", **overrides: Any
) -> tuple[httpx.AsyncClient, list[Hit]]:
    sink: list[Hit] = []

    async def put(hits: list[Hit]) -> None:
        sink.extend(hits)

    collector = Collector(load(flags=overrides, env={}), put)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["path"] == "/p.gif":
            await collector.pixel(scope, receive, send)
        else:
            await collector.beacon(scope, receive, send)

    transport = httpx.ASGITransport(app=app, client=(client_ip, 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://c.test"), sink


def assert_gif(r: httpx.Response) -> None:
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/gif"
    assert "no-store" in r.headers["cache-control"]
    assert r.content == GIF and len(GIF) == 43
    assert r.content[:6] == b"GIF89a" and struct.unpack("<HH", r.content[6:10]) == (1, 1)


async def test_pixel_answers_gif_sets_cookie_and_accepts_hit() -> None:
    client, sink = make_client()
    r = await client.get(
        "/p.gif",
        params={"s": "demo", "u": "https://a.example/x?utm_source=nl", "t": "Home"},
        headers={"user-agent": "Mozilla/5.0 Test"},
    )
    assert_gif(r)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("_cs_vid=") and "Max-Age=63072000" in cookie and "Path=/" in cookie
    assert "SameSite=Lax" in cookie
    [hit] = sink
    assert (
        hit.site == "demo"
        and hit.url == "https://a.example/x?utm_source=nl"
        and hit.title == "Home"
    )
    assert hit.event == "pageview" and hit.source == "pixel"
    assert hit.ip == "203.0.113.0"  # truncated to /24 by default
    assert cookie.split(";")[0] == f"_cs_vid={hit.visitor_id}"
    hit.check()


@pytest.mark.parametrize(
    ("client_ip", "truncate", "stored"),
    [
        ("::ffff:203.0.113.77", True, "203.0.113.0"),  # a dual-stack socket's IPv4 client
        ("::FFFF:203.0.113.77", False, "203.0.113.77"),
        ("203.0.113.77", False, "203.0.113.77"),
        ("2001:db8:1:2::7", True, "2001:db8:1::"),
    ],
)
async def test_ipv4_mapped_client_is_stored_as_ipv4(
    client_ip: str, truncate: bool, stored: str
) -> None:
    client, sink = make_client(client_ip, ip_truncate=truncate)
    await client.get("/p.gif?s=demo&u=https://a.example/", headers={"user-agent": "Mozilla/5.0"})
    [hit] = sink
    assert hit.ip == stored


async def test_cookie_is_reused_and_refreshed() -> None:
    client, sink = make_client()
    vid = "a" * 32
    r = await client.get("/p.gif?s=demo&u=https://a.example/", headers={"cookie": f"_cs_vid={vid}"})
    assert_gif(r)
    assert sink[0].visitor_id == vid
    assert r.headers["set-cookie"].startswith(f"_cs_vid={vid};")


async def test_page_url_defaults_to_referer() -> None:
    client, sink = make_client()
    await client.get("/p.gif?s=demo", headers={"referer": "https://site.example/page"})
    assert sink[0].url == "https://site.example/page"


async def test_utm_of_a_bare_pixel_come_from_the_page_url() -> None:
    client, sink = make_client()
    landing = (
        "https://a.example/l?utm_source=news&utm_medium=email&utm_campaign=dec%20sale&utm_term=t"
    )
    await client.get("/p.gif", params={"s": "demo", "u": landing})
    await client.get(
        "/p.gif?s=demo", headers={"referer": "https://a.example/?utm_source=ref&utm_source=x"}
    )
    # explicit utm_* parameters win over the URL's (the tracker sends them)
    await client.get("/p.gif", params={"s": "demo", "u": landing, "utm_source": "param"})
    got = [(h.utm_source, h.utm_medium, h.utm_campaign, h.utm_term, h.utm_content) for h in sink]
    assert got == [
        ("news", "email", "dec sale", "t", ""),
        ("ref", "", "", "", ""),
        ("param", "", "", "", ""),
    ]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("u=https://a.example/", "missing_site"),
        ("s=bad%20site&u=https://a.example/", "bad_site"),
        ("s=demo", "missing_url"),
        ("s=demo&u=javascript:alert(1)", "bad_url"),
        ("s=demo&u=https://a.example/" + "x" * 2001, "url_too_long"),
        ("s=demo&u=https://a.example/&n=-1", "bad_n"),
        ("s=demo&u=https://a.example/&n=abc", "bad_n"),
        ("s=demo&u=https://a.example/&cts=12x", "bad_cts"),
        ("s=demo&u=https://a.example/&nav=sideways", "bad_nav"),
        ("s=demo&u=https://a.example/&e=%3Cscript%3E", "bad_event"),
        ("s=demo&u=https://a.example/&vid=short", "bad_vid"),
        ("s=demo&u=https://a.example/&u2=%ff%fe", "bad_encoding"),
        ("s=demo&u=https://a.example/&t=a%00b", "bad_chars"),
        (
            "s=demo&u=https://a.example/&" + "&".join(f"x_p{i}=1" for i in range(31)),
            "too_many_props",
        ),
        ("s=demo&u=https://a.example/&x_bad%20key=1", "bad_prop"),
        ("s=demo&u=https://a.example/&uid=" + "u" * 129, "bad_uid"),
    ],
)
async def test_malformed_pixel_still_gets_gif_and_is_counted(query: str, reason: str) -> None:
    client, sink = make_client()
    before = METRICS.get("hits_dropped_total", reason=reason)
    r = await client.get("/p.gif?" + query)
    assert_gif(r)
    assert "set-cookie" not in r.headers
    assert sink == []
    assert METRICS.get("hits_dropped_total", reason=reason) == before + 1


async def test_non_ascii_query_string_is_dropped_not_crashed() -> None:
    client, sink = make_client()
    transport_app = client._transport.app  # type: ignore[attr-defined]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/p.gif",
        "query_string": b"s=demo&u=\xff\xfe",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    await transport_app(scope, receive, send)
    assert sent[0]["status"] == 200 and sent[1]["body"] == GIF
    assert sink == []


async def test_site_allow_list_drops_unknown_sites() -> None:
    client, sink = make_client(sites="shop,blog")
    before = METRICS.get("hits_dropped_total", reason="unknown_site")
    assert_gif(await client.get("/p.gif?s=other&u=https://a.example/"))
    assert_gif(await client.get("/p.gif?s=shop&u=https://a.example/"))
    assert [h.site for h in sink] == ["shop"]
    assert METRICS.get("hits_dropped_total", reason="unknown_site") == before + 1


async def test_props_and_derived_time() -> None:
    client, sink = make_client()
    await client.get(
        "/p.gif?s=demo&u=https://a.example/&x_revenue=12.5&x_plan=pro&cts=1000&sts=61000"
    )
    hit = sink[0]
    assert hit.props == {"revenue": "12.5", "plan": "pro"}
    assert hit.ts == hit.received - 60000


def test_derived_time_rules() -> None:
    assert derived_ts(100_000, 1_000, 31_000) == 70_000
    assert derived_ts(100_000, None, 31_000) == 100_000
    assert derived_ts(100_000, 31_000, 1_000) == 100_000  # sent before created: ignored
    assert derived_ts(100_000, 0, 31 * 86400_000) == 100_000  # over 30 days: ignored


async def test_beacon_single_array_text_plain_and_long_names() -> None:
    client, sink = make_client()
    r = await client.post(
        "/collect",
        content=b'{"site":"demo","url":"https://a.example/a","event":"signup"}',
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 204
    r = await client.post(
        "/collect",
        json=[
            {"s": "demo", "u": "https://a.example/b"},
            {"s": "demo", "u": "https://a.example/c", "props": {"k": 1}},
        ],
    )
    assert r.status_code == 204
    assert [h.url for h in sink] == [
        "https://a.example/a",
        "https://a.example/b",
        "https://a.example/c",
    ]
    assert sink[0].event == "signup" and sink[0].source == "beacon"
    assert sink[1].visitor_id == sink[2].visitor_id
    assert sink[2].props == {"k": "1"}


async def test_beacon_ua_override() -> None:
    client, sink = make_client()
    r = await client.post(
        "/collect", json={"s": "demo", "u": "https://a.example/", "ua": "MyApp/1.0"}
    )
    assert r.status_code == 204 and sink[0].user_agent == "MyApp/1.0"


async def test_oversized_beacon_gets_413() -> None:
    client, sink = make_client()
    big = b'{"s":"demo","u":"https://a.example/","t":"' + b"x" * 70_000 + b'"}'
    before = METRICS.get("hits_dropped_total", reason="body_too_large")
    r = await client.post("/collect", content=big)
    assert r.status_code == 413 and "errors" in r.json()
    assert sink == []
    assert METRICS.get("hits_dropped_total", reason="body_too_large") == before + 1


@pytest.mark.parametrize(
    ("body", "needle", "reason"),
    [
        (b"not json", "not valid JSON", "not_json"),
        (b"[]", "empty array", "empty_batch"),
        (b"[1]", "not an object", "not_object"),
        (b'{"u":"https://a.example/"}', "missing_site", "missing_site"),
        (
            b'[{"s":"demo","u":"https://a.example/"},{"s":"demo","u":"ftp://x"}]',
            "bad_url",
            "bad_url",
        ),
        (
            b"[" + b",".join([b'{"s":"demo","u":"https://a.example/"}'] * 101) + b"]",
            "more than 100 events",
            "too_many_events",
        ),
        (b'{"s":"demo","u":"https://a.example/","props":[1]}', "bad_props", "bad_props"),
        (
            b'{"s":"demo","u":"https://a.example/","props":{"a":{"b":{"c":1}}}}',
            "bad_prop",
            "bad_prop",
        ),
    ],
)
async def test_bad_beacon_body_is_400_with_errors_and_nothing_accepted(
    body: bytes, needle: str, reason: str
) -> None:
    client, sink = make_client()
    before = METRICS.get("beacon_rejected_total", reason=reason)
    r = await client.post("/collect", content=body)
    assert r.status_code == 400
    assert any(needle in e for e in r.json()["errors"])
    assert sink == []
    # the label is the reason, never "event 3" (one series per batch position)
    assert METRICS.get("beacon_rejected_total", reason=reason) == before + 1


async def test_cors_preflight_and_allowed_origins() -> None:
    client, _ = make_client(allowed_origins="https://shop.example")
    r = await client.options("/collect", headers={"origin": "https://shop.example"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert r.headers["access-control-allow-credentials"] == "true"
    r = await client.options("/collect", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_dnt_and_optout_drop_at_the_door() -> None:
    client, sink = make_client(respect_dnt="true")
    assert_gif(await client.get("/p.gif?s=demo&u=https://a.example/", headers={"dnt": "1"}))
    assert_gif(await client.get("/p.gif?s=demo&u=https://a.example/", headers={"sec-gpc": "1"}))
    assert_gif(
        await client.get("/p.gif?s=demo&u=https://a.example/", headers={"cookie": "_cs_optout=1"})
    )
    assert sink == []
    client2, sink2 = make_client()
    await client2.get("/p.gif?s=demo&u=https://a.example/", headers={"dnt": "1"})
    assert len(sink2) == 1  # the default policy ignores DNT


async def test_beacon_other_methods_get_405_naming_the_allowed_ones() -> None:
    client, sink = make_client()
    for method in ("GET", "PUT", "DELETE"):
        r = await client.request(method, "/collect")
        assert r.status_code == 405 and r.json() == {"errors": ["use POST"]}
        assert r.headers["allow"] == "POST, OPTIONS"
    assert sink == []
