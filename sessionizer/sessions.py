"""Sessionization: a pure fold over enriched hits, no Kafka, no ClickHouse.

State keeps, per visitor, the hits of its open session sorted by event time.
``fold(state, hit)`` adds one hit and returns the sessions it closed (a gap over
the timeout or a campaign change).  ``close_idle(state, clock)`` closes sessions
nobody can add to any more; ``close_all`` closes everything (flush, shutdown).
Sessions are built by :func:`flags.build_session`, deterministic in their hits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sessionizer.enrich import Enriched
from sessionizer.flags import Rules, SessionResult, build_session


def session_id(site: str, visitor_id: str, first_hit_id: str) -> str:
    """Deterministic: the same hits always give the same id (replays are idempotent)."""
    digest = hashlib.blake2b(f"{site}\x1f{visitor_id}\x1f{first_hit_id}".encode(), digest_size=16)
    return digest.hexdigest()


@dataclass(slots=True)
class Visitor:
    site: str
    visitor_id: str
    hits: list[Enriched] = field(default_factory=list)  # open session, sorted by (ts, hit_id)
    seen: set[str] = field(default_factory=set)  # hit ids in the open session
    sessions_before: int = 0  # closed sessions of this visitor (history + this process)
    crm_id: str = ""
    last_received: int = 0

    @property
    def last_ts(self) -> int:
        return self.hits[-1].hit.ts if self.hits else 0


@dataclass
class State:
    rules: Callable[[str], Rules]
    visitors: dict[tuple[str, str], Visitor] = field(default_factory=dict)
    dirty: set[tuple[str, str]] = field(default_factory=set)
    # visitor -> (closed sessions before, crm id) looked up by the I/O shell on first sight
    history: Callable[[str, str], tuple[int, str]] = lambda site, vid: (0, "")
    capped: int = 0  # sessions split because they hit the per-session cap


def _campaign(e: Enriched) -> tuple[str, str, str]:
    h = e.hit
    return (h.utm_source, h.utm_medium, h.utm_campaign)


def fold(state: State, e: Enriched) -> tuple[State, list[SessionResult]]:
    """Add one hit; return the sessions this hit closed."""
    hit = e.hit
    key = (hit.site, hit.visitor_id)
    v = state.visitors.get(key)
    if v is None:
        before, crm = state.history(hit.site, hit.visitor_id)
        v = state.visitors[key] = Visitor(hit.site, hit.visitor_id, sessions_before=before, crm_id=crm)
    if hit.hit_id in v.seen:  # a replayed or re-sent hit: already folded
        return state, []
    rules = state.rules(hit.site)
    closed: list[SessionResult] = []
    if v.hits and _starts_new_session(v, e, rules):
        closed.append(_close(state, v, rules))
        if len(v.hits) >= rules.max_hits:
            state.capped += 1
    _insert(v, e)
    v.last_received = max(v.last_received, hit.received)
    if hit.crm_id:
        v.crm_id = hit.crm_id
    state.dirty.add(key)
    return state, closed


def _starts_new_session(v: Visitor, e: Enriched, rules: Rules) -> bool:
    hit = e.hit
    if hit.ts - v.last_ts > rules.timeout_ms:
        return True
    if len(v.hits) >= rules.max_hits:
        return True
    if hit.ts - v.hits[0].hit.ts > rules.max_duration_ms:
        return True
    if (hit.utm_source or hit.utm_medium or hit.utm_campaign) and hit.ts >= v.last_ts:
        current = next((_campaign(h) for h in reversed(v.hits) if any(_campaign(h))), None)
        if current is not None and current != _campaign(e):
            return True
    return False


def _insert(v: Visitor, e: Enriched) -> None:
    v.seen.add(e.hit.hit_id)
    if not v.hits or (e.hit.ts, e.hit.hit_id) >= (v.hits[-1].hit.ts, v.hits[-1].hit.hit_id):
        v.hits.append(e)
        return
    # out of order within the open session: keep the list sorted
    i = len(v.hits)
    while i > 0 and (v.hits[i - 1].hit.ts, v.hits[i - 1].hit.hit_id) > (e.hit.ts, e.hit.hit_id):
        i -= 1
    v.hits.insert(i, e)


def _close(state: State, v: Visitor, rules: Rules) -> SessionResult:
    result = _build(v, rules, closed=True)
    v.sessions_before += 1
    v.hits = []
    v.seen = set()
    state.dirty.discard((v.site, v.visitor_id))
    return result


def _build(v: Visitor, rules: Rules, closed: bool) -> SessionResult:
    first = v.hits[0].hit
    sid = session_id(v.site, v.visitor_id, first.hit_id)
    return build_session(sid, v.hits, rules, closed=closed, number=v.sessions_before + 1, crm_id=v.crm_id)


def close_idle(state: State, clock: Callable[[Visitor], int]) -> list[SessionResult]:
    """Close sessions whose partition clock passed their last hit + timeout."""
    closed = []
    for key, v in list(state.visitors.items()):
        if not v.hits:
            continue
        rules = state.rules(v.site)
        if clock(v) - v.last_received > rules.timeout_ms:
            closed.append(_close(state, v, rules))
            _forget(state, key, v)
    return closed


def close_all(state: State) -> list[SessionResult]:
    closed = [_close(state, v, state.rules(v.site)) for v in state.visitors.values() if v.hits]
    for key, v in list(state.visitors.items()):
        _forget(state, key, v)
    return closed


def _forget(state: State, key: tuple[str, str], v: Visitor) -> None:
    """A visitor with no open session leaves memory (history is re-read when it returns)."""
    if not v.hits:
        del state.visitors[key]


def take_dirty(state: State) -> list[SessionResult]:
    """Provisional results for open sessions that changed since the last call."""
    out = []
    for key in state.dirty:
        v = state.visitors.get(key)
        if v is not None and v.hits:
            out.append(_build(v, state.rules(v.site), closed=False))
    state.dirty.clear()
    return out


def min_open_offsets(state: State) -> dict[int, int]:
    """Per partition, the smallest offset of a hit in an open session (not final yet)."""
    out: dict[int, int] = {}
    for v in state.visitors.values():
        for e in v.hits:
            if e.partition >= 0 and (e.partition not in out or e.offset < out[e.partition]):
                out[e.partition] = e.offset
    return out
