"""Enrichment: a named pipeline of small steps over one decoded Hit.

``STEPS`` runs in order; each step reads the Hit and fills fields of the
:class:`Enriched` record, or returns a drop reason (a string) that :func:`enrich`
hands back instead of the record, for the caller to count.  No step does I/O per
hit: the user-agent parser is cached per UA string, the GeoIP reader is opened once.

Bots come from two sources: the ``user-agents`` parser's ``is_bot`` and the
patterns of the crawler-user-agents list (PyPI ``crawler-user-agents``, from
https://github.com/monperrus/crawler-user-agents).  Setting ``bots``: ``flag``
(default: ``is_bot=1``, kept), ``drop`` (not stored, counted), ``off``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from clickstream.hit import Hit
from clickstream.settings import SettingsError

TRACKING_PARAMS = frozenset({"gclid", "fbclid", "msclkid", "_ga", "dclid", "yclid", "twclid"})

SEARCH_ENGINES = (
    "google.",
    "bing.com",
    "duckduckgo.com",
    "yahoo.",
    "yandex.",
    "baidu.com",
    "ecosia.org",
    "search.brave.com",
    "qwant.com",
    "startpage.com",
    "naver.com",
    "seznam.cz",
)
SOCIAL = (
    "facebook.com",
    "fb.com",
    "instagram.com",
    "twitter.com",
    "x.com",
    "t.co",
    "linkedin.com",
    "lnkd.in",
    "reddit.com",
    "pinterest.",
    "tiktok.com",
    "youtube.com",
    "youtu.be",
    "mastodon.",
    "threads.net",
    "news.ycombinator.com",
    "bsky.app",
    "vk.com",
    "weibo.com",
)
EMAIL_HOSTS = ("mail.google.com", "outlook.live.com", "mail.yahoo.com", "webmail.")
PAID_MEDIUMS = frozenset(
    {
        "cpc",
        "ppc",
        "paid",
        "paidsearch",
        "paid_search",
        "cpm",
        "display",
        "paid_social",
        "paidsocial",
        "affiliate",
    }
)
SOCIAL_MEDIUMS = frozenset({"social", "social-network", "social-media", "sm", "social network"})


@dataclass(slots=True)
class Enriched:
    """A hit plus everything derived from it alone (not from its neighbours)."""

    hit: Hit
    partition: int = -1
    offset: int = -1
    host: str = ""
    path: str = ""
    query_string: str = ""
    page: str = ""  # '' for non-page events
    search_query: str = ""
    browser: str = ""
    browser_version: str = ""
    os: str = ""
    device_type: str = ""
    is_bot: bool = False
    country: str = ""
    region: str = ""
    city: str = ""
    referrer_host: str = ""
    channel: str = ""
    revenue: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Context:
    """Per-site knobs the steps read (from settings)."""

    search_params: frozenset[str]
    geo: Callable[[str], tuple[str, str, str]] | None = None
    bots: str = "flag"  # flag | drop | off


Step = Callable[[Enriched, Context], str | None]


def split_url(e: Enriched, ctx: Context) -> str | None:
    """Host, path, query; for pages the page name and the site-search query."""
    e.host, e.path, e.query_string, page, query = _split(
        e.hit.url, e.hit.is_page, ctx.search_params
    )
    if e.hit.is_page:
        e.page = page
        e.search_query = (e.hit.search_query.strip() or query)[:500]
    return None


@lru_cache(maxsize=65536)
def _split(
    url: str, is_page: bool, search_params: frozenset[str]
) -> tuple[str, str, str, str, str]:
    """(host, path, query string, page, search query from the URL), once per distinct URL."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "")[:255]
    except ValueError:
        parts, host = urlsplit(""), ""
    path = parts.path or "/"
    if not is_page:
        return host, path, parts.query, "", ""
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        pairs = []
    # the page keeps the URL's own spelling of the parameters it keeps (q=red%20shoes,
    # a bare flag), so it reads as the address bar did, minus the tracking parameters
    kept = [
        part
        for part in parts.query.split("&")
        if part and not _is_tracking(unquote_plus(part.partition("=")[0]))
    ]
    page = path + ("?" + "&".join(kept) if kept else "")
    query = next((v.strip() for k, v in pairs if k in search_params and v.strip()), "")
    return host, path, parts.query, page, query


def _is_tracking(key: str) -> bool:
    return key.startswith("utm_") or key in TRACKING_PARAMS


def parse_user_agent(e: Enriched, ctx: Context) -> str | None:
    e.browser, e.browser_version, e.os, e.device_type, bot = _ua(e.hit.user_agent)
    e.is_bot = bot and ctx.bots != "off"
    return None


def drop_bots(e: Enriched, ctx: Context) -> str | None:
    return "bot" if e.is_bot and ctx.bots == "drop" else None


@lru_cache(maxsize=65536)
def _ua(ua: str) -> tuple[str, str, str, str, bool]:
    """(browser, version, os, device type, is bot), once per distinct UA string."""
    if not ua:
        return ("", "", "", "unknown", False)
    from user_agents import parse  # slow import, done once

    agent = parse(ua)
    version = ".".join(str(x) for x in agent.browser.version[:2])
    if agent.is_bot or is_crawler(ua):
        device = "bot"
    elif agent.is_tablet:
        device = "tablet"
    elif agent.is_mobile:
        device = "mobile"
    elif agent.is_pc:
        device = "desktop"
    else:
        device = "other"
    return (agent.browser.family, version, agent.os.family, device, device == "bot")


def is_crawler(ua: str) -> bool:
    """The crawler-user-agents patterns (about 1,500 regular expressions)."""
    import crawleruseragents

    return bool(crawleruseragents.is_crawler(ua))


def geolocate(e: Enriched, ctx: Context) -> str | None:
    if ctx.geo is not None and e.hit.ip:
        e.country, e.region, e.city = ctx.geo(e.hit.ip)
    return None


class GeoIP:
    """Country (ISO code), region (subdivision ISO code) and city (English name) from a
    MaxMind-format ``.mmdb`` (GeoLite2-City, DB-IP City Lite), cached per IP string."""

    def __init__(self, path: str):
        import maxminddb

        try:
            self.reader = maxminddb.open_database(path)
        except (OSError, ValueError) as exc:
            raise GeoIPError(f"setting 'geoip_db': cannot open {path!r}: {exc}") from None
        self.lookup = lru_cache(maxsize=65536)(self._lookup)

    def _lookup(self, ip: str) -> tuple[str, str, str]:
        try:
            rec: Any = self.reader.get(ip)
        except ValueError:  # not an IP address
            return ("", "", "")
        if not isinstance(rec, dict):
            return ("", "", "")
        country = (rec.get("country") or {}).get("iso_code", "")
        subs = rec.get("subdivisions") or [{}]
        region = subs[0].get("iso_code", "") if isinstance(subs, list) and subs else ""
        city = ((rec.get("city") or {}).get("names") or {}).get("en", "")
        return (str(country)[:8], str(region)[:16], str(city)[:100])

    def __call__(self, ip: str) -> tuple[str, str, str]:
        return self.lookup(ip)

    def close(self) -> None:
        self.reader.close()


class GeoIPError(SettingsError):
    """The configured GeoIP database cannot be used (names the setting)."""


def classify_channel(e: Enriched, ctx: Context) -> str | None:
    """direct, organic search, paid, social, email or referral (first match wins)."""
    hit = e.hit
    e.referrer_host = _host(hit.referrer)
    paid_click = "gclid=" in hit.url or "msclkid=" in hit.url
    e.channel = _channel(
        e.referrer_host,
        e.host,
        hit.utm_medium.lower(),
        hit.utm_source.lower(),
        bool(hit.utm_campaign),
        paid_click,
    )
    return None


@lru_cache(maxsize=65536)
def _host(url: str) -> str:
    if not url:
        return ""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


@lru_cache(maxsize=65536)
def _channel(
    ref_host: str, host: str, medium: str, source: str, campaign: bool, paid_click: bool
) -> str:
    if medium in PAID_MEDIUMS or paid_click:
        return "paid"
    if medium == "email" or source in ("newsletter", "email") or _match(ref_host, EMAIL_HOSTS):
        return "email"
    if medium in SOCIAL_MEDIUMS or _match(ref_host, SOCIAL) or _match(source, SOCIAL):
        return "social"
    if medium == "organic" or _match(ref_host, SEARCH_ENGINES) or _match(source, SEARCH_ENGINES):
        return "organic search"
    if (ref_host and ref_host != host) or source or campaign:
        return "referral"
    return "direct"


def _match(host: str, patterns: tuple[str, ...]) -> bool:
    if not host:
        return False
    host = host.removeprefix("www.").removeprefix("m.")
    return any(
        host.startswith(p) if p.endswith(".") else (host == p or host.endswith("." + p))
        for p in patterns
    )


def read_revenue(e: Enriched, ctx: Context) -> str | None:
    """``props['revenue']`` (``x_revenue=``) as a number; anything else counts 0."""
    raw = e.hit.props.get("revenue")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            return None
        if value == value and abs(value) < 1e12:  # not NaN, not inf, not absurd
            e.revenue = value
    return None


STEPS: tuple[Step, ...] = (
    split_url,
    parse_user_agent,
    drop_bots,
    geolocate,
    classify_channel,
    read_revenue,
)


def enrich(hit: Hit, ctx: Context, partition: int = -1, offset: int = -1) -> Enriched | str:
    """The enriched hit, or the reason it is dropped (e.g. ``"bot"``)."""
    e = Enriched(hit=hit, partition=partition, offset=offset)
    for step in STEPS:
        reason = step(e, ctx)
        if reason is not None:
            return reason
    return e
