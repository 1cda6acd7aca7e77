"""Hits and sessions read back from ClickHouse, for amending and re-sessionizing.

A stored hit becomes an :class:`Enriched` again: the fields the UA parser and GeoIP
filled are taken as stored (the raw user agent is not kept); page, search query,
channel and revenue are derived again with the current per-site settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from clickstream.hit import Hit
from sessionizer.enrich import Context, Enriched, classify_channel, read_revenue, split_url

Key = tuple[str, str]
HIT_FIELDS = (
    "site",
    "visitor_id",
    "hit_id",
    "toUnixTimestamp64Milli(ts)",
    "toUnixTimestamp64Milli(received)",
    "event",
    "url",
    "referrer",
    "title",
    "search_query",
    "search_results",
    "uid",
    "nav",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "props",
    "ip",
    "source",
    "browser",
    "browser_version",
    "os",
    "device_type",
    "is_bot",
    "country",
    "region",
    "city",
)
CHUNK = 1000


def to_enriched(row: list[Any] | tuple[Any, ...], ctx: Context) -> Enriched:
    (
        site,
        vid,
        hid,
        ts,
        received,
        event,
        url,
        referrer,
        title,
        query,
        results,
        uid,
        nav,
        us,
        um,
        uc,
        ut,
        uco,
        props,
        ip,
        source,
        browser,
        bver,
        os_,
        device,
        bot,
        country,
        region,
        city,
    ) = row
    hit = Hit(
        site=site,
        visitor_id=vid,
        hit_id=hid,
        ts=int(ts),
        received=int(received),
        event=event,
        url=url,
        referrer=referrer,
        title=title,
        search_query=query,
        search_results=results,
        crm_id=uid,
        nav=nav,
        utm_source=us,
        utm_medium=um,
        utm_campaign=uc,
        utm_term=ut,
        utm_content=uco,
        props=dict(props),
        ip=ip,
        source=source,
    )
    e = Enriched(
        hit=hit,
        browser=browser,
        browser_version=bver,
        os=os_,
        device_type=device,
        is_bot=bool(bot),
        country=country,
        region=region,
        city=city,
    )
    for step in (split_url, classify_channel, read_revenue):
        step(e, ctx)
    return e


def _chunks(keys: list[Key]) -> Iterable[tuple[Key, ...]]:
    for i in range(0, len(keys), CHUNK):
        yield tuple(keys[i : i + CHUNK])


def visitor_hits(
    client: Client, db: str, keys: list[Key], ctx: Callable[[str], Context]
) -> dict[Key, list[Enriched]]:
    """Every stored hit of these visitors (``hits FINAL``)."""
    out: dict[Key, list[Enriched]] = {k: [] for k in keys}
    for chunk in _chunks(keys):
        rows = warehouse.read_query(
            client,
            f"SELECT {', '.join(HIT_FIELDS)} FROM {db}.hits FINAL "
            "WHERE (site, visitor_id) IN %(keys)s",
            parameters={"keys": chunk},
            comment="sessionizer:amend-hits",
        ).rows
        for r in rows:
            out[(r[0], r[1])].append(to_enriched(r, ctx(r[0])))
    return out


def visitor_sessions(client: Client, db: str, keys: list[Key]) -> dict[Key, dict[str, int]]:
    """Live session ids of these visitors → start ts (ms)."""
    out: dict[Key, dict[str, int]] = {k: {} for k in keys}
    for chunk in _chunks(keys):
        rows = warehouse.read_query(
            client,
            f"SELECT site, visitor_id, session_id, toUnixTimestamp64Milli(start_ts) "
            f"FROM {db}.sessions FINAL WHERE (site, visitor_id) IN %(keys)s",
            parameters={"keys": chunk},
            comment="sessionizer:amend-sessions",
        ).rows
        for site, vid, sid, start in rows:
            out[(site, vid)][sid] = int(start)
    return out


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
