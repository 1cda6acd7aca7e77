"""GET /r: click tracking that only redirects to allow-listed hosts (no open redirect)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from clickstream.hit import Hit
from clickstream.metrics import METRICS
from clickstream.settings import load
from collector import app as collector_app
from collector.hot import Collector


def client(**flags: str) -> tuple[httpx.AsyncClient, list[Hit]]:
    sink: list[Hit] = []

    async def put(hits: list[Hit]) -> None:
        sink.extend(hits)

    collector = Collector(load(flags=flags, env={}), put)
    app = Starlette(routes=collector_app.routes(collector))
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://c.test"), sink


async def test_allowed_host_is_recorded_and_redirected() -> None:
    c, sink = client(redirect_hosts="shop.example, docs.example")
    vid = "b" * 32
    r = await c.get(
        "/r",
        params={"s": "mail", "to": "https://shop.example/sale?x=1", "utm_campaign": "spring"},
        headers={"cookie": f"_cs_vid={vid}", "user-agent": "Mail/1.0"},
    )
    assert r.status_code == 302 and r.headers["location"] == "https://shop.example/sale?x=1"
    assert r.headers["cache-control"] == "no-store"
    [hit] = sink
    assert (hit.site, hit.event, hit.url, hit.source) == (
        "mail",
        "click",
        "https://shop.example/sale?x=1",
        "redirect",
    )
    assert hit.visitor_id == vid and hit.utm_campaign == "spring" and hit.user_agent == "Mail/1.0"
    assert hit.ip == "198.51.100.0"


async def test_hosts_off_the_allow_list_are_refused() -> None:
    c, sink = client(redirect_hosts="shop.example")
    before = METRICS.get("redirects_refused_total")
    for target in (
        "https://evil.example/",
        "https://shop.example.evil.example/",
        "javascript:alert(1)",
        "//evil.example/",
        "https://user@evil.example/",
        "",
    ):
        r = await c.get("/r", params={"s": "mail", "to": target})
        assert r.status_code == 400 and "location" not in r.headers, target
    assert sink == []
    assert METRICS.get("redirects_refused_total") == before + 6
    c2, _ = client()  # no allow list: nothing is redirected
    assert (
        await c2.get("/r", params={"s": "mail", "to": "https://shop.example/"})
    ).status_code == 400


async def test_a_click_follows_the_pixels_privacy_and_cookie_rules() -> None:
    c, sink = client(redirect_hosts="shop.example", respect_dnt="true")
    to = {"s": "mail", "to": "https://shop.example/"}
    fresh = await c.get("/r", params=to)
    assert fresh.status_code == 302
    [hit] = sink
    assert fresh.headers["set-cookie"].startswith(
        f"_cs_vid={hit.visitor_id}; Max-Age=63072000; Path=/"
    )
    for headers in ({"cookie": "_cs_optout=1"}, {"dnt": "1"}, {"sec-gpc": "1"}):
        r = await c.get("/r", params=to, headers=headers)
        assert r.status_code == 302 and "set-cookie" not in r.headers  # redirected, not recorded
    assert len(sink) == 1
