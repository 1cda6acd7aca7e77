"""Privacy and abuse controls at the collector door: IP truncation, DNT/GPC, opt-out,
cookieless ids, the site allow list, per-site CORS, the per-IP rate limit, cookie flags."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from clickstream.metrics import METRICS
from collector.cookieless import DailySalt
from collector.hot import GIF
from collector.ratelimit import RateLimiter
from tests.privacy.collect import collector
from tests.privacy.conftest import client, make_app

PAGE = {"s": "shop", "u": "https://shop.example/"}
DAY = 86_400.0
NOON = 1_767_268_800.0  # 2026-01-01T12:00:00Z


def dropped(reason: str) -> float:
    return METRICS.get("hits_dropped_total", reason=reason)


async def test_ip_is_truncated_by_default_and_kept_whole_only_when_a_site_says_so(
    tmp_path: Path,
) -> None:
    c, sink, _ = collector(
        tmp_path, "[site.lab]\nip_truncate = false\n", ip="2001:db8:abcd:12:1:2:3:4"
    )
    await c.get("/p.gif", params=PAGE)
    await c.get("/p.gif", params={**PAGE, "s": "lab"})
    assert [h.ip for h in sink] == ["2001:db8:abcd::", "2001:db8:abcd:12:1:2:3:4"]


async def test_dnt_and_gpc_are_ignored_or_honoured_per_site(tmp_path: Path) -> None:
    c, sink, _ = collector(tmp_path, "[site.careful]\nrespect_dnt = true\n")
    before = dropped("dnt")
    for header in ({"dnt": "1"}, {"sec-gpc": "1"}):
        r = await c.get("/p.gif", params=PAGE, headers=header)  # policy: ignore (default)
        assert r.content == GIF and "set-cookie" in r.headers
        r = await c.get("/p.gif", params={**PAGE, "s": "careful"}, headers=header)
        assert r.content == GIF and "set-cookie" not in r.headers
    r = await c.get("/p.gif", params={**PAGE, "s": "careful"}, headers={"dnt": "0"})
    assert [h.site for h in sink] == ["shop", "shop", "careful"]
    assert dropped("dnt") - before == 2
    r = await c.post(
        "/collect", json={"s": "careful", "u": "https://c.example/"}, headers={"sec-gpc": "1"}
    )
    assert r.status_code == 204 and len(sink) == 3
    assert dropped("dnt") - before == 3


async def test_optout_cookie_stops_tracking_until_undone(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with client(app.app) as web:
        r = await web.get("/optout")
        assert r.status_code == 200 and "opted out" in r.text
        assert (
            r.headers["set-cookie"].startswith("_cs_optout=1;")
            and "SameSite=Lax" in r.headers["set-cookie"]
        )
        r = await web.get("/optout?undo=1")
        assert (
            r.headers["set-cookie"].startswith("_cs_optout=;")
            and "Max-Age=0" in r.headers["set-cookie"]
        )
    c, sink, _ = collector(tmp_path)
    before = dropped("opt_out")
    r = await c.get("/p.gif", params=PAGE, headers={"cookie": "_cs_optout=1; _cs_vid=" + "a" * 32})
    assert r.content == GIF and "set-cookie" not in r.headers and sink == []
    assert dropped("opt_out") - before == 1
    r = await c.post("/collect", json=[PAGE, PAGE], headers={"cookie": "_cs_optout=1"})
    assert r.status_code == 204 and sink == []
    assert dropped("opt_out") - before == 3  # the beacon's two under the pixel's reason


async def test_cookieless_same_visitor_within_a_day_new_one_the_next_and_no_old_salt(
    tmp_path: Path,
) -> None:
    c, sink, col = collector(tmp_path, "[site.anon]\ncookieless = true\n")
    now = [NOON]
    col.salts = DailySalt(tmp_path / "data" / "salt", clock=lambda: now[0])
    ua = {"user-agent": "Mozilla/5.0 A"}
    anon = {**PAGE, "s": "anon"}
    r1 = await c.get("/p.gif", params=anon, headers={**ua, "cookie": "_cs_vid=" + "c" * 32})
    r2 = await c.post("/collect", json={**anon, "vid": "d" * 32}, headers=ua)
    now[0] += 11 * 3600  # 23:00 the same day
    await c.get("/p.gif", params=anon, headers=ua)
    await c.get("/p.gif", params=anon, headers={"user-agent": "Mozilla/5.0 B"})  # another browser
    await c.get("/p.gif", params=PAGE, headers=ua)  # a site with cookies
    assert "set-cookie" not in r1.headers and "set-cookie" not in r2.headers
    ids = [h.visitor_id for h in sink]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 32
    assert ids[3] != ids[0] and ids[4] not in (ids[0], ids[3])
    salt_dir = tmp_path / "data" / "salt"
    assert os.listdir(salt_dir) == ["2026-01-01"]
    assert stat.S_IMODE((salt_dir / "2026-01-01").stat().st_mode) == 0o600
    now[0] += 2 * 3600  # 01:00 next day: rotation
    await c.get("/p.gif", params=anon, headers=ua)
    assert sink[-1].visitor_id != ids[0]
    assert os.listdir(salt_dir) == ["2026-01-02"]  # yesterday's salt is gone from disk
    assert sink[-1].ip == "203.0.113.0"  # the hash used the whole IP; storage keeps it truncated


def test_cookieless_salt_is_shared_by_workers_and_swept_without_traffic(tmp_path: Path) -> None:
    now = [NOON]
    a = DailySalt(tmp_path / "salt", clock=lambda: now[0])
    b = DailySalt(tmp_path / "salt", clock=lambda: now[0])
    assert a.visitor_id("s", "1.2.3.4", "ua") == b.visitor_id("s", "1.2.3.4", "ua")
    now[0] += DAY
    assert b.sweep() == ["2026-01-01"] and os.listdir(tmp_path / "salt") == []
    memory = DailySalt(None, clock=lambda: now[0])
    assert memory.visitor_id("s", "1.2.3.4", "ua") == memory.visitor_id("s", "1.2.3.4", "ua")
    assert memory.visitor_id("s", "1.2.3.4", "ua") != a.visitor_id("s", "1.2.3.4", "ua")


async def test_unknown_sites_are_dropped_and_counted(tmp_path: Path) -> None:
    c, sink, _ = collector(tmp_path, sites="shop,blog")
    before = dropped("unknown_site")
    r = await c.get("/p.gif", params={**PAGE, "s": "elsewhere"})
    assert r.content == GIF and "set-cookie" not in r.headers
    r = await c.post("/collect", json={**PAGE, "s": "elsewhere"})
    assert r.status_code == 400 and "unknown_site" in r.json()["errors"][0]
    await c.get("/p.gif", params=PAGE)
    assert [h.site for h in sink] == ["shop"] and dropped("unknown_site") - before == 2


async def test_cors_allows_each_sites_own_origins_and_drops_hits_from_others(
    tmp_path: Path,
) -> None:
    toml = 'allowed_origins = "https://www.blog.example"\n[site.shop]\nallowed_origins = "https://shop.example"\n'
    c, sink, _ = collector(tmp_path, toml)
    pre = {"origin": "https://shop.example", "access-control-request-method": "POST"}
    r = await c.options("/collect", headers=pre)
    assert (
        r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://shop.example"
    )
    r = await c.options("/collect", headers={**pre, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    before = dropped("origin_not_allowed")
    r = await c.post(
        "/collect", json=PAGE, headers={"origin": "https://www.blog.example"}
    )  # not shop's origin (but blog's): the answer does not let blog's page read it
    assert r.status_code == 204 and sink == []
    assert "access-control-allow-origin" not in r.headers and r.headers["vary"] == "Origin"
    assert dropped("origin_not_allowed") - before == 1
    r = await c.post(
        "/collect", json=[PAGE, {**PAGE, "s": "blog"}], headers={"origin": "https://shop.example"}
    )
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert [h.site for h in sink] == ["shop"]  # blog's event came from shop's origin
    await c.post(
        "/collect", json={**PAGE, "s": "blog"}, headers={"origin": "https://www.blog.example"}
    )
    await c.post("/collect", json=PAGE)  # server-side: no Origin, no CORS
    assert [h.site for h in sink] == ["shop", "blog", "shop"]


async def test_rate_limit_per_ip_drops_and_counts_but_the_pixel_still_answers(
    tmp_path: Path,
) -> None:
    c, sink, _ = collector(tmp_path, rate_limit_per_ip="0.001", rate_limit_burst="3")
    before = dropped("rate_limited")
    answers = [await c.get("/p.gif", params=PAGE) for _ in range(5)]
    assert all(r.status_code == 200 and r.content == GIF for r in answers)
    assert ["set-cookie" in r.headers for r in answers] == [True, True, True, False, False]
    r = await c.post("/collect", json=PAGE)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert len(sink) == 3 and dropped("rate_limited") - before == 3
    other, other_sink, _ = collector(
        tmp_path, ip="198.51.100.1", rate_limit_per_ip="0.001", rate_limit_burst="3"
    )
    await other.get("/p.gif", params=PAGE)
    assert len(other_sink) == 1


def test_rate_limiter_refills_groups_ipv6_by_64_and_stays_bounded() -> None:
    rl = RateLimiter(rate=2.0, burst=2, max_keys=3)
    assert [rl.allow("192.0.2.1", now=0.0) for _ in range(3)] == [True, True, False]
    assert rl.allow("192.0.2.1", now=0.5) and not rl.allow("192.0.2.1", now=0.5)
    assert rl.allow("2001:db8::1", now=0) and rl.allow("2001:db8::ffff", now=0)
    assert not rl.allow("2001:db8:0:0:1::1", now=0)  # same /64
    assert rl.allow("2001:db8:0:1::1", now=0)  # another /64
    for i in range(10):
        rl.allow(f"10.0.0.{i}", now=1.0)
    assert len(rl.buckets) == 3


async def test_visitor_cookie_flags(tmp_path: Path) -> None:
    c, _, _ = collector(tmp_path)
    plain = (await c.get("/p.gif", params=PAGE)).headers["set-cookie"]
    assert "SameSite=Lax" in plain and "Secure" not in plain and "Path=/" in plain
    c, _, _ = collector(tmp_path, base="https://c.test")
    assert "; Secure" in (await c.get("/p.gif", params=PAGE)).headers["set-cookie"]
    c, _, _ = collector(tmp_path, cookie_third_party="true", cookie_domain="c.test")
    third = (await c.get("/p.gif", params=PAGE)).headers["set-cookie"]
    assert (
        "SameSite=None; Secure" in third and "Domain=c.test" in third and third.count("Secure") == 1
    )


async def test_optout_cookie_reaches_where_the_visitor_cookie_does(tmp_path: Path) -> None:
    """A collector on another site only receives a SameSite=None cookie with the tracked
    pages' pixels, and the tracker reads _cs_optout only under the shared Domain: the
    opt-out cookie carries the visitor cookie's Domain and SameSite, and its undo too."""
    from starlette.applications import Starlette

    from collector import app as collector_app

    for flags, attrs in (
        ({}, "; Path=/; SameSite=Lax"),
        (
            {"cookie_domain": "shop.example", "cookie_third_party": True},
            "; Path=/; Domain=shop.example; SameSite=None; Secure",
        ),
    ):
        _, _, col = collector(tmp_path, **flags)
        app = Starlette(routes=collector_app.routes(col))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://c.test"
        ) as c:
            out = (await c.get("/optout")).headers["set-cookie"]
            assert out == f"_cs_optout=1; Max-Age=63072000{attrs}"
            undo = (await c.get("/optout", params={"undo": "1"})).headers["set-cookie"]
            assert undo == f"_cs_optout=; Max-Age=0{attrs}"
        vid = (await col_pixel(col)).headers["set-cookie"]
        assert vid.endswith(f"; Max-Age=63072000{attrs}")


async def col_pixel(col: object) -> httpx.Response:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await col.pixel(scope, receive, send)  # type: ignore[attr-defined]

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://c.test"
    ) as c:
        return await c.get("/p.gif", params=PAGE)
