"""Hits for sessionizer tests, and a pure driver that plays the warehouse's part."""

from __future__ import annotations

import itertools
from typing import Any

from clickstream.hit import Hit
from sessionizer import sessions
from sessionizer.enrich import Context, Enriched, enrich
from sessionizer.flags import SessionResult
from sessionizer.split import Rules

T0 = 1_767_607_200_000  # 2026-01-05 10:00:00 UTC, epoch ms
SEARCH_PARAMS = frozenset(["q", "query", "s", "search", "searchword", "k", "keyword", "keywords"])
CTX = Context(search_params=SEARCH_PARAMS)
_ids = itertools.count(1)


def hit(
    t: float,
    path: str = "/",
    *,
    vid: str = "v1",
    site: str = "s1",
    hid: str = "",
    event: str = "pageview",
    n: int | None = None,
    q: str = "",
    utm: tuple[str, str, str] = ("", "", ""),
    nav: str = "",
    uid: str = "",
    props: dict[str, str] | None = None,
    referrer: str = "",
    received: float | None = None,
    ua: str = "",
) -> Enriched:
    """A hit ``t`` seconds after T0 on ``https://ex.com`` + ``path``."""
    ts = T0 + int(t * 1000)
    h = Hit(
        site=site,
        visitor_id=vid,
        hit_id=hid or f"h{next(_ids):06d}",
        ts=ts,
        received=T0 + int((t if received is None else received) * 1000),
        event=event,
        url="https://ex.com" + path,
        search_query=q,
        search_results=n,
        nav=nav,
        utm_source=utm[0],
        utm_medium=utm[1],
        utm_campaign=utm[2],
        crm_id=uid,
        props=props or {},
        referrer=referrer,
        user_agent=ua,
    )
    e = enrich(h, CTX, partition=0, offset=next(_ids))
    assert isinstance(e, Enriched)
    return e


class Warehouse:
    """The tables as FINAL would show them: sessions by id, hits by id."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.hits: dict[str, tuple[str, Enriched]] = {}  # hit id -> (session id, hit)

    def write(self, results: list[SessionResult], tombstones: list[sessions.Tombstone]) -> None:
        live = {r.session_id for r in results}
        for t in tombstones:
            if t.session_id not in live:
                self.sessions.pop(t.session_id, None)
        for r in results:
            self.sessions[r.session_id] = r.session
            for e in r.hits:
                self.hits[e.hit.hit_id] = (r.session_id, e)

    def stored(self, key: tuple[str, str]) -> tuple[list[Enriched], dict[str, int]]:
        hits = [e for _, e in self.hits.values() if (e.hit.site, e.hit.visitor_id) == key]
        ids = {
            sid: s["start_ts"]
            for sid, s in self.sessions.items()
            if (s["site"], s["visitor_id"]) == key
        }
        return hits, ids


def run(
    hits: list[Enriched],
    rules: Rules | None = None,
    flush_every: int = 0,
    rules_by_site: dict[str, Rules] | None = None,
) -> tuple[Warehouse, sessions.State]:
    """Fold hits in the given (arrival) order the way the loop does, without I/O.

    ``flush_every``: also write provisional results and close nothing every N hits.
    Visitors are forgotten when their session closes, as in the loop (history comes
    from the warehouse, which this driver keeps)."""
    wh = Warehouse()

    def history(site: str, vid: str) -> sessions.Known:
        ss = [s for s in wh.sessions.values() if (s["site"], s["visitor_id"]) == (site, vid)]
        return sessions.Known(len(ss), max((s["end_ts"] for s in ss), default=-1))

    by_site = rules_by_site or {}
    state = sessions.State(
        rules=lambda site: by_site.get(site, rules or Rules()), history=history, amend_late=True
    )
    pending: list[SessionResult] = []
    for i, e in enumerate(hits, 1):
        _, closed = sessions.fold(state, e)
        pending += closed
        if state.amend or (flush_every and i % flush_every == 0):
            wh.write(pending, [])
            pending = []
            for key in sorted(state.amend):
                pending += sessions.amend(state, key, *wh.stored(key))
            wh.write(pending + sessions.take_dirty(state), sessions.take_tombstones(state))
            pending = []
            for key, v in list(state.visitors.items()):
                if not v.hits and not v.late:
                    del state.visitors[key]
    pending += sessions.close_all(state)
    wh.write(pending + sessions.take_dirty(state), sessions.take_tombstones(state))
    return wh, state


def by_start(wh: Warehouse) -> list[dict[str, Any]]:
    return sorted(
        wh.sessions.values(),
        key=lambda s: (s["site"], s["visitor_id"], s["start_ts"], s["session_number"]),
    )
