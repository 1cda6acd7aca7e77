"""Enrichment steps: UA (cached), bots, GeoIP from a tiny .mmdb, channels, IP as stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from clickstream.hit import Hit
from sessionizer import enrich as E
from sessionizer.enrich import STEPS, Context, Enriched, GeoIP, GeoIPError, enrich
from tests.sessionizer.factory import SEARCH_PARAMS, T0

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"


def make(url: str = "https://ex.com/", **kw: object) -> Hit:
    return Hit(site="s1", visitor_id="v1", hit_id="h1", ts=T0, received=T0, url=url, **kw)  # type: ignore[arg-type]


def run(hit: Hit, **ctx: object) -> Enriched | str:
    return enrich(hit, Context(search_params=SEARCH_PARAMS, **ctx))  # type: ignore[arg-type]


def test_pipeline_is_named_steps() -> None:
    assert [s.__name__ for s in STEPS] == [
        "split_url",
        "parse_user_agent",
        "drop_bots",
        "geolocate",
        "classify_channel",
        "read_revenue",
    ]


@pytest.mark.parametrize(
    ("ua", "browser", "os", "device", "bot"),
    [
        (CHROME, "Chrome", "Windows", "desktop", False),
        (IPHONE, "Mobile Safari", "iOS", "mobile", False),
        (GOOGLEBOT, "Googlebot", "Other", "bot", True),
        (HEADLESS, "HeadlessChrome", "Linux", "bot", True),  # crawler-user-agents list
        ("curl/8.4.0", "curl", "Other", "bot", True),
        ("", "", "", "unknown", False),
    ],
)
def test_user_agent_fields_and_bots(ua: str, browser: str, os: str, device: str, bot: bool) -> None:
    e = run(make(user_agent=ua))
    assert isinstance(e, Enriched)
    assert (e.browser, e.os, e.device_type, e.is_bot) == (browser, os, device, bot)


def test_user_agent_parsed_once_per_string() -> None:
    E._ua.cache_clear()
    for _ in range(50):
        run(make(user_agent=CHROME))
    info = E._ua.cache_info()
    assert (info.misses, info.hits) == (1, 49)


@pytest.mark.parametrize(("mode", "result"), [("flag", True), ("drop", "bot"), ("off", False)])
def test_bot_handling_is_configurable(mode: str, result: object) -> None:
    e = run(make(user_agent=GOOGLEBOT), bots=mode)
    assert (e if isinstance(e, str) else e.is_bot) == result


@pytest.fixture(scope="module")
def mmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    w.insert_network(
        IPSet(["81.2.69.0/24"]),
        {
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
            "city": {"names": {"en": "London"}},
        },
    )
    w.insert_network(IPSet(["2a02:8070::/32"]), {"country": {"iso_code": "DE"}})
    path = tmp_path_factory.mktemp("geo") / "tiny.mmdb"
    w.to_db_file(str(path))
    return path


@pytest.mark.parametrize(
    ("ip", "where"),
    [
        ("81.2.69.0", ("GB", "ENG", "London")),  # truncated /24 as the collector stores it
        ("81.2.69.142", ("GB", "ENG", "London")),
        ("2a02:8070:1234::", ("DE", "", "")),
        ("10.0.0.1", ("", "", "")),
        ("not-an-ip", ("", "", "")),
        ("", ("", "", "")),
    ],
)
def test_geoip_from_mmdb(mmdb: Path, ip: str, where: tuple[str, str, str]) -> None:
    geo = GeoIP(str(mmdb))
    e = run(make(ip=ip), geo=geo)
    assert isinstance(e, Enriched)
    assert (e.country, e.region, e.city) == where
    geo.close()


def test_geoip_bad_path_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(GeoIPError, match="setting 'geoip_db'"):
        GeoIP(str(tmp_path / "missing.mmdb"))


@pytest.mark.parametrize(
    ("url", "referrer", "utm", "channel"),
    [
        ("https://ex.com/", "", ("", ""), "direct"),
        ("https://ex.com/", "https://ex.com/other", ("", ""), "direct"),  # internal
        ("https://ex.com/", "https://www.google.com/", ("", ""), "organic search"),
        ("https://ex.com/", "https://duckduckgo.com/", ("", ""), "organic search"),
        ("https://ex.com/?gclid=abc", "https://www.google.com/", ("", ""), "paid"),
        ("https://ex.com/", "", ("google", "cpc"), "paid"),
        ("https://ex.com/", "https://t.co/x", ("", ""), "social"),
        ("https://ex.com/", "", ("facebook.com", "social"), "social"),
        ("https://ex.com/", "", ("newsletter", "email"), "email"),
        ("https://ex.com/", "https://mail.google.com/", ("", ""), "email"),
        ("https://ex.com/", "https://blog.example.org/post", ("", ""), "referral"),
        ("https://ex.com/", "", ("partner", "banner-swap"), "referral"),
        ("https://ex.com/", "::not a url::", ("", ""), "direct"),
    ],
)
def test_channels(url: str, referrer: str, utm: tuple[str, str], channel: str) -> None:
    e = run(make(url, referrer=referrer, utm_source=utm[0], utm_medium=utm[1]))
    assert isinstance(e, Enriched)
    assert e.channel == channel


@pytest.mark.parametrize(
    ("url", "event", "q", "page", "query"),
    [
        (
            "https://ex.com/s?q=+Red+Shoes+&utm_source=x",
            "pageview",
            "",
            "/s?q=+Red+Shoes+",
            "Red Shoes",
        ),
        ("https://ex.com/s?searchword=hat", "pageview", "", "/s?searchword=hat", "hat"),
        ("https://ex.com/results", "search", "boots", "/results", "boots"),
        ("https://ex.com/s?page=2", "pageview", "", "/s?page=2", ""),
        ("https://ex.com/s?q=", "pageview", "", "/s?q=", ""),
        # the page keeps the URL's own spelling of what it keeps, minus tracking params
        ("https://ex.com/s?q=red%20shoes&gclid=1", "pageview", "", "/s?q=red%20shoes", "red shoes"),
        ("https://ex.com/p?flag&b=2&_ga=1&utm%5Fsource=x", "pageview", "", "/p?flag&b=2", ""),
        ("https://ex.com/p?utm_medium=a&&a=%2F", "pageview", "", "/p?a=%2F", ""),
        ("http://[bad", "pageview", "", "/", ""),  # unparsable URL: a page at /
    ],
)
def test_search_query_from_site_search_params(
    url: str, event: str, q: str, page: str, query: str
) -> None:
    e = run(make(url, event=event, search_query=q))
    assert isinstance(e, Enriched)
    assert (e.page, e.search_query) == (page, query)
