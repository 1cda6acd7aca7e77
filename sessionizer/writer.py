"""Rows for ClickHouse from session results; the column lists match the DDL (tested)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from sessionizer.flags import SessionResult

HIT_COLUMNS = [
    "site", "hit_id", "ts", "received", "visitor_id", "session_id", "crm_id", "event", "url",
    "host", "path", "query_string", "page", "referrer", "title", "search_query", "search_results",
    "is_dead_end_search", "is_back_loop", "is_quick_back", "nav", "seq", "prev_page", "next_page",
    "browser", "browser_version", "os", "device_type", "is_bot", "country", "region", "city",
    "channel", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "props",
    "ip", "source", "version", "is_deleted",
]
SESSION_COLUMNS = [
    "site", "session_id", "visitor_id", "crm_id", "start_ts", "end_ts", "duration_s", "hits",
    "pageviews", "events", "entry_path", "exit_path", "paths", "referrer", "channel",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "browser", "os",
    "device_type", "country", "is_bot", "is_bounce", "session_number", "is_returning",
    "searches", "dead_end_searches", "dead_end_terms", "back_loops", "quick_backs",
    "back_loop_paths", "revenue", "is_closed", "version", "is_deleted",
]
IDENTITY_COLUMNS = ["site", "visitor_id", "crm_id", "first_ts", "last_ts", "version", "is_deleted"]

UTC = dt.UTC


def ms_to_dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, UTC)


def hit_rows(result: SessionResult) -> list[list[Any]]:
    rows = []
    for e, f in zip(result.hits, result.flags, strict=True):
        h = e.hit
        rows.append([
            h.site, h.hit_id, ms_to_dt(h.ts), ms_to_dt(h.received), h.visitor_id,
            result.session_id, f.crm_id, h.event, h.url, e.host, e.path, e.query_string, e.page,
            h.referrer, h.title, e.search_query, h.search_results, int(f.is_dead_end_search),
            int(f.is_back_loop), int(f.is_quick_back), h.nav, f.seq, f.prev_page, f.next_page,
            e.browser, e.browser_version, e.os, e.device_type, int(e.is_bot), e.country,
            e.region, e.city, e.channel, h.utm_source, h.utm_medium, h.utm_campaign,
            h.utm_term, h.utm_content, h.props, h.ip, h.source, result.version, 0,
        ])
    return rows


def session_row(result: SessionResult) -> list[Any]:
    s = dict(result.session)
    s["start_ts"] = ms_to_dt(s["start_ts"])
    s["end_ts"] = ms_to_dt(s["end_ts"])
    s["version"] = result.version
    s["is_deleted"] = 0
    return [s[c] for c in SESSION_COLUMNS]


def identity_rows(results: list[SessionResult]) -> list[list[Any]]:
    """(site, visitor, crm) links seen in these sessions, with first/last time."""
    links: dict[tuple[str, str, str], list[int]] = {}
    for r in results:
        for e in r.hits:
            h = e.hit
            if h.crm_id:
                span = links.setdefault((h.site, h.visitor_id, h.crm_id), [h.ts, h.ts])
                span[0] = min(span[0], h.ts)
                span[1] = max(span[1], h.ts)
    return [
        [site, vid, crm, ms_to_dt(first), ms_to_dt(last), last, 0]
        for (site, vid, crm), (first, last) in links.items()
    ]


class Writer:
    """Inserts rows into the three tables; raises on failure (the caller retries)."""

    def __init__(self, client: Client, database: str):
        self.client = client
        self.db = warehouse.check_name(database)

    def write(self, results: list[SessionResult]) -> tuple[int, int]:
        hits = [row for r in results for row in hit_rows(r)]
        sessions = [session_row(r) for r in results]
        identities = identity_rows(results)
        warehouse.insert(self.client, f"{self.db}.hits", hits, HIT_COLUMNS)
        warehouse.insert(self.client, f"{self.db}.sessions", sessions, SESSION_COLUMNS)
        warehouse.insert(self.client, f"{self.db}.identities", identities, IDENTITY_COLUMNS)
        return len(hits), len(sessions)
