"""From one session's sorted hits to its rows: pages, paths, searches, back-loops.

The definitions are DESIGN.md's:
- a page is a ``pageview`` or ``search`` hit, identified by path + query without
  tracking parameters; ``paths`` is the session's sequence of pages;
- a dead-end search returned 0 results, or was the session's last page, or was
  followed directly by another search (no result opened in between);
- a back-loop is a return to the page viewed two pages earlier (A → B → A, B ≠ A),
  counted on the return; a quick back when the time on B was under ``quick_back_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sessionizer.enrich import Enriched


@dataclass(frozen=True, slots=True)
class Rules:
    timeout_ms: int = 30 * 60_000
    quick_back_ms: int = 10_000
    max_hits: int = 10_000
    max_duration_ms: int = 24 * 3600_000


@dataclass(slots=True)
class HitFlags:
    seq: int = 0
    prev_page: str = ""
    next_page: str = ""
    is_dead_end_search: bool = False
    is_back_loop: bool = False
    is_quick_back: bool = False
    crm_id: str = ""


@dataclass(slots=True)
class SessionResult:
    session_id: str
    hits: list[Enriched]
    flags: list[HitFlags]
    session: dict[str, Any]
    version: int
    closed: bool
    extra: dict[str, Any] = field(default_factory=dict)


def build_session(
    sid: str, hits: list[Enriched], rules: Rules, closed: bool, number: int, crm_id: str = ""
) -> SessionResult:
    flags = [HitFlags(seq=i + 1) for i in range(len(hits))]
    page_idx = [i for i, e in enumerate(hits) if e.page]
    pages = [hits[i].page for i in page_idx]
    # neighbours
    for k, i in enumerate(page_idx):
        flags[i].prev_page = pages[k - 1] if k > 0 else ""
        flags[i].next_page = pages[k + 1] if k + 1 < len(pages) else ""
    # searches
    dead_terms: list[str] = []
    searches = 0
    for k, i in enumerate(page_idx):
        e = hits[i]
        if not (e.search_query or e.hit.event == "search"):
            continue
        searches += 1
        last = k + 1 == len(page_idx)
        next_is_search = not last and _is_search(hits[page_idx[k + 1]])
        if e.hit.search_results == 0 or (last and closed) or next_is_search:
            flags[i].is_dead_end_search = True
            dead_terms.append(e.search_query)
    # back-loops
    back_loops = quick_backs = 0
    loop_pages: list[str] = []
    for k in range(2, len(page_idx)):
        a, b, c = page_idx[k - 2], page_idx[k - 1], page_idx[k]
        if hits[c].page == hits[a].page and hits[b].page != hits[a].page:
            flags[c].is_back_loop = True
            back_loops += 1
            loop_pages.append(hits[b].page)
            if hits[c].hit.ts - hits[b].hit.ts < rules.quick_back_ms:
                flags[c].is_quick_back = True
                quick_backs += 1
    # CRM id: from the hit that carried it on (the session takes the latest known)
    current = ""
    for f, e in zip(flags, hits, strict=True):
        current = e.hit.crm_id or current
        f.crm_id = current
    session_crm = current or crm_id
    if session_crm and not current:
        for f in flags:
            f.crm_id = session_crm
    first, last_hit = hits[0], hits[-1]
    start, end = first.hit.ts, last_hit.hit.ts
    entry = next((e for e in hits if e.page), first)
    session = {
        "site": first.hit.site,
        "session_id": sid,
        "visitor_id": first.hit.visitor_id,
        "crm_id": session_crm,
        "start_ts": start,
        "end_ts": end,
        "duration_s": max(0, (end - start) // 1000),
        "hits": len(hits),
        "pageviews": len(pages),
        "events": len(hits) - len(pages),
        "entry_path": pages[0] if pages else "",
        "exit_path": pages[-1] if pages else "",
        "paths": pages,
        "referrer": entry.hit.referrer,
        "channel": entry.channel,
        "utm_source": entry.hit.utm_source,
        "utm_medium": entry.hit.utm_medium,
        "utm_campaign": entry.hit.utm_campaign,
        "utm_term": entry.hit.utm_term,
        "utm_content": entry.hit.utm_content,
        "browser": first.browser,
        "os": first.os,
        "device_type": first.device_type,
        "country": first.country,
        "is_bot": int(any(e.is_bot for e in hits)),
        "is_bounce": int(len(pages) <= 1),
        "session_number": number,
        "is_returning": int(number > 1),
        "searches": searches,
        "dead_end_searches": len(dead_terms),
        "dead_end_terms": dead_terms,
        "back_loops": back_loops,
        "quick_backs": quick_backs,
        "back_loop_paths": loop_pages,
        "revenue": sum(e.revenue for e in hits),
        "is_closed": int(closed),
    }
    # A session only grows, and closing is its last change: this orders every rewrite.
    version = len(hits) * 2 + int(closed)
    return SessionResult(sid, hits, flags, session, version, closed)


def _is_search(e: Enriched) -> bool:
    return bool(e.search_query) or e.hit.event == "search"
