"""Rows for ClickHouse from session results; the column lists match the DDL (tested).

Every write carries one ``version``: a per-process monotonic clock in microseconds,
so a later write of a session (grown, closed, amended or deleted) always wins under
``FINAL``, whichever process wrote it.  Identity links keep their earliest
``first_ts``: the writer reads the stored link and writes ``min``/``max``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from clickstream import erase, warehouse
from sessionizer.flags import SessionResult
from sessionizer.sessions import Tombstone

HIT_COLUMNS = [
    "site",
    "hit_id",
    "ts",
    "received",
    "visitor_id",
    "session_id",
    "crm_id",
    "uid",
    "event",
    "url",
    "host",
    "path",
    "query_string",
    "page",
    "referrer",
    "title",
    "search_query",
    "search_results",
    "is_dead_end_search",
    "search_result_opened",
    "is_pogo_stick",
    "is_back_loop",
    "is_quick_back",
    "nav",
    "seq",
    "prev_page",
    "next_page",
    "browser",
    "browser_version",
    "os",
    "device_type",
    "is_bot",
    "country",
    "region",
    "city",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "props",
    "ip",
    "source",
    "version",
    "is_deleted",
]
SESSION_COLUMNS = [
    "site",
    "session_id",
    "visitor_id",
    "crm_id",
    "start_ts",
    "end_ts",
    "duration_s",
    "hits",
    "pageviews",
    "events",
    "entry_path",
    "exit_path",
    "paths",
    "referrer",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "browser",
    "os",
    "device_type",
    "country",
    "is_bot",
    "is_bounce",
    "session_number",
    "is_returning",
    "searches",
    "search_results_opened",
    "pogo_sticks",
    "dead_end_searches",
    "dead_end_terms",
    "back_loops",
    "quick_backs",
    "back_loop_paths",
    "is_back_looping",
    "back_forward_navs",
    "revenue",
    "is_closed",
    "version",
    "is_deleted",
]
IDENTITY_COLUMNS = ["site", "visitor_id", "crm_id", "first_ts", "last_ts", "version", "is_deleted"]

UTC = dt.UTC
next_version = warehouse.next_version  # microseconds, shared with clickstream.identity


def ms_to_dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, UTC)


def hit_rows(result: SessionResult, version: int) -> list[list[Any]]:
    rows = []
    for i, (e, f) in enumerate(zip(result.hits, result.flags, strict=True)):
        if i in result.unchanged:
            continue
        h = e.hit
        rows.append(
            [
                h.site,
                h.hit_id,
                ms_to_dt(h.ts),
                ms_to_dt(h.received),
                h.visitor_id,
                result.session_id,
                f.crm_id,
                h.crm_id,
                h.event,
                h.url,
                e.host,
                e.path,
                e.query_string,
                e.page,
                h.referrer,
                h.title,
                e.search_query,
                h.search_results,
                int(f.is_dead_end_search),
                int(f.search_result_opened),
                int(f.is_pogo_stick),
                int(f.is_back_loop),
                int(f.is_quick_back),
                h.nav,
                f.seq,
                f.prev_page,
                f.next_page,
                e.browser,
                e.browser_version,
                e.os,
                e.device_type,
                int(e.is_bot),
                e.country,
                e.region,
                e.city,
                e.channel,
                h.utm_source,
                h.utm_medium,
                h.utm_campaign,
                h.utm_term,
                h.utm_content,
                h.props,
                h.ip,
                h.source,
                version,
                0,
            ]
        )
    return rows


def session_row(result: SessionResult, version: int) -> list[Any]:
    s = dict(result.session)
    s["start_ts"] = ms_to_dt(s["start_ts"])
    s["end_ts"] = ms_to_dt(s["end_ts"])
    s["version"] = version
    s["is_deleted"] = 0
    return [s[c] for c in SESSION_COLUMNS]


_EMPTY_SESSION: dict[str, Any] = {
    c: (
        []
        if c in ("paths", "dead_end_terms", "back_loop_paths")
        else 0.0
        if c == "revenue"
        else ""
        if c
        in (
            "crm_id",
            "entry_path",
            "exit_path",
            "referrer",
            "channel",
            "browser",
            "os",
            "device_type",
            "country",
        )
        or c.startswith("utm_")
        else 0
    )
    for c in SESSION_COLUMNS
}


def tombstone_row(t: Tombstone, version: int) -> list[Any]:
    """Same sorting key as the live row (site, day of start, id), ``is_deleted=1``."""
    s = dict(
        _EMPTY_SESSION,
        site=t.site,
        session_id=t.session_id,
        visitor_id=t.visitor_id,
        start_ts=ms_to_dt(t.start_ts),
        end_ts=ms_to_dt(t.start_ts),
        version=version,
        is_deleted=1,
    )
    return [s[c] for c in SESSION_COLUMNS]


def identity_links(results: list[SessionResult]) -> dict[tuple[str, str, str], list[int]]:
    """(site, visitor, crm) links carried by these sessions' hits → [first ts, last ts]."""
    links: dict[tuple[str, str, str], list[int]] = {}
    for r in results:
        for e in r.hits:
            h = e.hit
            if h.crm_id:
                span = links.setdefault((h.site, h.visitor_id, h.crm_id), [h.ts, h.ts])
                span[0] = min(span[0], h.ts)
                span[1] = max(span[1], h.ts)
    return links


class Writer:
    """Inserts rows into the three tables; raises on failure (the caller retries)."""

    def __init__(self, client: Client, database: str):
        self.client = client
        self.db = warehouse.check_name(database)
        self.erased = erase.erased_set(client, self.db)
        # (site, crm id) of the links the last write made or moved earlier: their first hit
        # is in it (a replay of that write finds them again); ``customer.settle`` them
        self.links_first: set[tuple[str, str]] = set()

    def write(
        self, results: list[SessionResult], tombstones: Sequence[Tombstone] = ()
    ) -> tuple[int, int]:
        results = erase.drop_erased(results, self.erased)  # erased people stay erased on replay
        version = next_version()
        live = {r.session_id for r in results}
        hits = [row for r in results for row in hit_rows(r, version)]
        sessions = [session_row(r, version) for r in results]
        sessions += [tombstone_row(t, version) for t in tombstones if t.session_id not in live]
        identities = self.identity_rows(identity_links(results), version)
        warehouse.insert(self.client, f"{self.db}.hits", hits, HIT_COLUMNS)
        warehouse.insert(self.client, f"{self.db}.sessions", sessions, SESSION_COLUMNS)
        warehouse.insert(self.client, f"{self.db}.identities", identities, IDENTITY_COLUMNS)
        return len(hits), len(sessions)

    def identity_rows(
        self, links: dict[tuple[str, str, str], list[int]], version: int
    ) -> list[list[Any]]:
        """Merge with the stored links so ``first_ts`` stays the earliest ever seen."""
        self.links_first = set()
        if not links:
            return []
        stored = warehouse.read_query(
            self.client,
            f"SELECT site, visitor_id, crm_id, toUnixTimestamp64Milli(first_ts), "
            f"toUnixTimestamp64Milli(last_ts) FROM {self.db}.identities FINAL "
            f"WHERE (site, visitor_id, crm_id) IN %(keys)s",
            parameters={"keys": tuple(links)},
            comment="sessionizer:identities",
        ).rows
        first_here = {key: span[0] for key, span in links.items()}
        for site, vid, crm, first, last in stored:
            span = links[(site, vid, crm)]
            span[0], span[1] = min(span[0], first), max(span[1], last)
        # a link is new, or this write holds its earliest hit (also when replayed): the
        # hits of a customer signed in for a while carry a link made long before
        self.links_first = {
            (site, crm)
            for (site, vid, crm), span in links.items()
            if first_here[(site, vid, crm)] <= span[0]
        }
        return [
            [site, vid, crm, ms_to_dt(first), ms_to_dt(last), version, 0]
            for (site, vid, crm), (first, last) in links.items()
        ]
