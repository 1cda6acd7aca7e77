"""From one session's sorted hits to its rows: pages, paths, searches, back-loops.

The definitions are DESIGN.md's:
- a page is a ``pageview`` or ``search`` hit, identified by path + query without
  tracking parameters; ``paths`` is the session's sequence of pages; ``prev_page`` and
  ``next_page`` of any hit are the pages before and after it in the session;
- a dead-end search returned 0 results, or was the session's last page, or was
  followed directly by a search for another term (no result opened in between); the
  same term again (case aside: results page 2, a re-sort, a reload of the results) is
  that search going on, not searching again, so only the last page of such a run can
  be a dead end for being left or followed by another term (each page still counts in
  ``searches``, and each page with 0 results is a dead end);
- per search: a result was opened when the next page is not a search (and the search
  did not report 0 results: a page after those is no result); pogo-sticking
  when the page after that result is the same results page again;
- a search page that is a back-loop (back on results seen two pages earlier, as after
  opening a result) is not a new search: it has no search flags, is not counted in
  ``searches``, and, as the next page of a search, still counts as searching again
  (the searches report counts it as a pogo-stick, not a search);
- a back-loop is a return to the page viewed two pages earlier (A → B → A, B ≠ A),
  counted on the return; a quick back when the time on B was under ``quick_back_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessionizer.enrich import Enriched
from sessionizer.split import Rules


@dataclass(slots=True)
class HitFlags:
    seq: int = 0
    prev_page: str = ""
    next_page: str = ""
    is_dead_end_search: bool = False
    search_result_opened: bool = False
    is_pogo_stick: bool = False
    is_back_loop: bool = False
    is_quick_back: bool = False
    crm_id: str = ""


@dataclass(slots=True)
class SessionResult:
    session_id: str
    hits: list[Enriched]
    flags: list[HitFlags]
    session: dict[str, Any]
    closed: bool
    unchanged: frozenset[int] = frozenset()  # hit indexes whose row is already written as is
    visitor_crm: str = ""  # the CRM id the visitor is linked to, as known when built


def is_search(e: Enriched) -> bool:
    return bool(e.page) and (bool(e.search_query) or e.hit.event == "search")


def same_term(a: Enriched, b: Enriched | None) -> bool:
    """Both searches are for the same (non-empty) term, whatever its case."""
    return (
        b is not None
        and bool(a.search_query)
        and (a.search_query.casefold() == b.search_query.casefold())
    )


def build_session(
    sid: str, hits: list[Enriched], rules: Rules, closed: bool, number: int, crm_id: str = ""
) -> SessionResult:
    """The session row and per-hit flags; ``crm_id`` is the visitor's CRM id before it."""
    flags = [HitFlags(seq=i + 1) for i in range(len(hits))]
    page_idx = [i for i, e in enumerate(hits) if e.page]
    pages = [hits[i].page for i in page_idx]
    n = len(pages)
    for k, i in enumerate(page_idx):
        flags[i].prev_page = pages[k - 1] if k > 0 else ""
        flags[i].next_page = pages[k + 1] if k + 1 < n else ""
    # another event sits between two pages: the page before it and the page after it
    # (what a funnel step event:NAME leads to is its next_page, like a page's)
    before = ""
    for i, e in enumerate(hits):
        if e.page:
            before = e.page
        else:
            flags[i].prev_page = before
    after = ""
    for i in range(len(hits) - 1, -1, -1):
        if hits[i].page:
            after = hits[i].page
        else:
            flags[i].next_page = after
    # back-loops: A -> B -> A (B != A), counted on the return (positions in `pages`)
    returns = [k for k in range(2, n) if pages[k] == pages[k - 2] and pages[k - 1] != pages[k]]
    # searches: dead ends, result opened, pogo-sticking (results -> result -> results);
    # a search page that is a back-loop is the visitor back on results already counted
    # (pogo-sticking), not a new search: no search flags of its own
    dead_terms: list[str] = []
    searches = opened = pogo = 0
    back = set(returns)
    for k, i in enumerate(page_idx):
        e = hits[i]
        if not is_search(e) or k in back:
            continue
        searches += 1
        last = k + 1 == n
        nxt = None if last else hits[page_idx[k + 1]]
        next_is_search = nxt is not None and is_search(nxt)
        # the same term again (results page 2, a re-sort, a reload) is this search going on
        again = next_is_search and not same_term(e, nxt)
        no_results = e.hit.search_results == 0
        if no_results or (last and closed) or again:
            flags[i].is_dead_end_search = True
            dead_terms.append(e.search_query)
        if not last and not next_is_search and not no_results:  # 0 results: none to open
            flags[i].search_result_opened = True
            opened += 1
            if k + 2 < n and pages[k + 2] == pages[k]:
                flags[i].is_pogo_stick = True
                pogo += 1
    back_loops = quick_backs = 0
    loop_pages: list[str] = []
    for k in returns:
        b, c = page_idx[k - 1], page_idx[k]
        flags[c].is_back_loop = True
        back_loops += 1
        loop_pages.append(hits[b].page)
        if hits[c].hit.ts - hits[b].hit.ts < rules.quick_back_ms:
            flags[c].is_quick_back = True
            quick_backs += 1
    # CRM id: the visitor's known id, replaced from the hit that carries a new one on
    current = crm_id
    for f, e in zip(flags, hits, strict=True):
        current = e.hit.crm_id or current
        f.crm_id = current
    first, last_hit = hits[0], hits[-1]
    start, end = first.hit.ts, last_hit.hit.ts
    entry = next((e for e in hits if e.page), first)
    session = {
        "site": first.hit.site,
        "session_id": sid,
        "visitor_id": first.hit.visitor_id,
        "crm_id": current,
        "start_ts": start,
        "end_ts": end,
        "duration_s": max(0, (end - start) // 1000),
        "hits": len(hits),
        "pageviews": n,
        "events": len(hits) - n,
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
        "is_bounce": int(n <= 1),
        "session_number": number,
        "is_returning": int(number > 1),
        "searches": searches,
        "search_results_opened": opened,
        "pogo_sticks": pogo,
        "dead_end_searches": len(dead_terms),
        "dead_end_terms": dead_terms,
        "back_loops": back_loops,
        "quick_backs": quick_backs,
        "back_loop_paths": loop_pages,
        "is_back_looping": int(back_loops >= 2),
        "back_forward_navs": sum(1 for e in hits if e.hit.nav == "back_forward"),
        "revenue": sum(e.revenue for e in hits),
        "is_closed": int(closed),
    }
    return SessionResult(sid, hits, flags, session, closed)
