"""Sessionization: a pure fold over enriched hits, no Kafka, no ClickHouse.

State keeps, per visitor, the hits of its open session sorted by event time.
``fold(state, hit)`` adds one hit and returns the sessions it closed (see
:mod:`sessionizer.split` for the rules).  A hit older than the open session that
falls within ``timeout`` of a session already written (or earlier) cannot be folded
from memory: it is parked in ``Visitor.late`` and the visitor is marked for
:func:`amend`, which the I/O shell calls with the visitor's stored hits; amend
re-splits everything and returns rewritten sessions plus :class:`Tombstone` s for
session ids that no longer exist.  ``close_idle`` closes sessions nobody can add to
any more; ``close_all`` closes everything (flush, shutdown).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sessionizer.enrich import Enriched
from sessionizer.flags import SessionResult, build_session
from sessionizer.split import CAPS, Rules, sort_key, split, starts_new


def session_id(site: str, visitor_id: str, first_hit_id: str) -> str:
    """Deterministic: the same hits always give the same id (replays are idempotent)."""
    digest = hashlib.blake2b(f"{site}\x1f{visitor_id}\x1f{first_hit_id}".encode(), digest_size=16)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Known:
    """What the warehouse knows of a visitor when first seen by this process."""

    sessions: int = 0
    last_end: int = -1  # end_ts of its latest session, -1 when none
    crm_id: str = ""
    crm_since: int = 0  # first_ts of that CRM link


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A session row to delete (``is_deleted=1``): its hits now belong elsewhere."""

    site: str
    visitor_id: str
    session_id: str
    start_ts: int


@dataclass(slots=True)
class Visitor:
    site: str
    visitor_id: str
    hits: list[Enriched] = field(default_factory=list)  # open session, sorted by (ts, hit_id)
    seen: set[str] = field(default_factory=set)  # hit ids in the open session (and late)
    sessions_before: int = 0  # sessions before the open one (stored + closed here)
    last_end: int = -1  # end ts of the latest session before the open one
    crm_id: str = ""  # CRM id known before the open session
    crm_since: int = 0
    last_received: int = 0
    late: list[Enriched] = field(default_factory=list)  # waiting for amend()
    written: tuple[str, int] | None = None  # (id, start) of the open session as last written
    known_crm: tuple[str, int] = ("", 0)  # CRM link in the warehouse when first seen

    @property
    def last_ts(self) -> int:
        return self.hits[-1].hit.ts if self.hits else 0


@dataclass
class State:
    rules: Callable[[str], Rules]
    visitors: dict[tuple[str, str], Visitor] = field(default_factory=dict)
    dirty: set[tuple[str, str]] = field(default_factory=set)
    history: Callable[[str, str], Known | tuple[int, str]] = lambda site, vid: Known()
    amend: set[tuple[str, str]] = field(default_factory=set)
    tombstones: list[Tombstone] = field(default_factory=list)
    capped: int = 0  # sessions cut by a cap (max hits / max duration)
    # True (the loop): a hit touching a closed session waits for amend(); False (pure use
    # without a warehouse): it joins the open session (or starts one), never lost
    amend_late: bool = False


def _visitor(state: State, site: str, vid: str) -> Visitor:
    v = state.visitors.get((site, vid))
    if v is None:
        k = state.history(site, vid)
        if not isinstance(k, Known):  # (sessions before, crm id): no stored end known
            k = Known(sessions=k[0], crm_id=k[1])
        v = Visitor(
            site,
            vid,
            sessions_before=k.sessions,
            last_end=k.last_end,
            crm_id=k.crm_id,
            crm_since=k.crm_since,
            known_crm=(k.crm_id, k.crm_since),
        )
        state.visitors[(site, vid)] = v
    return v


def fold(state: State, e: Enriched) -> tuple[State, list[SessionResult]]:
    """Add one hit; return the sessions this hit closed."""
    hit = e.hit
    key = (hit.site, hit.visitor_id)
    v = _visitor(state, *key)
    if hit.hit_id in v.seen:  # a replayed or re-sent hit: already folded
        return state, []
    rules = state.rules(hit.site)
    v.seen.add(hit.hit_id)
    v.last_received = max(v.last_received, hit.received)
    if state.amend_late and (v.late or _touches_stored(v, e, rules)):
        v.late.append(e)
        state.amend.add(key)
        return state, []
    closed: list[SessionResult] = []
    if not v.hits or sort_key(e) >= sort_key(v.hits[-1]):
        reason = starts_new(v.hits, e, rules)
        if reason:
            state.capped += reason in CAPS
            closed.append(_close(state, v, rules, hit.ts))
            v.seen.add(hit.hit_id)
        v.hits.append(e)
    else:  # out of order inside the open session: split it again from scratch
        hits = sorted([*v.hits, e], key=sort_key)
        segments, capped = split(hits, rules)
        state.capped += capped
        closed = _resplit(state, v, segments, rules)
    state.dirty.add(key)
    return state, closed


def _touches_stored(v: Visitor, e: Enriched, rules: Rules) -> bool:
    """Could ``e`` change a session already closed (written, or closed here before)?"""
    if v.hits and sort_key(e) >= sort_key(v.hits[0]):
        return False
    return v.last_end >= 0 and e.hit.ts - v.last_end <= rules.timeout_ms


def _sid(seg: list[Enriched]) -> str:
    h = seg[0].hit
    return session_id(h.site, h.visitor_id, h.hit_id)


def _retire(state: State, v: Visitor, ids: set[str]) -> None:
    if v.written is not None and v.written[0] not in ids:
        state.tombstones.append(Tombstone(v.site, v.visitor_id, *v.written))
    v.written = None


def _emit(v: Visitor, seg: list[Enriched], rules: Rules, next_start: int = -1) -> SessionResult:
    """Build ``seg`` as a closed session and move the visitor's counters past it
    (``next_start``: the first hit time of the visitor's next session, -1 when none)."""
    crm = linked_crm(v, seg, rules, next_start)
    result = build_session(
        _sid(seg), seg, rules, closed=True, number=v.sessions_before + 1, crm_id=crm
    )
    v.sessions_before += 1
    v.last_end = seg[-1].hit.ts
    if result.session["crm_id"] and result.session["crm_id"] != v.crm_id:
        v.crm_id, v.crm_since = result.session["crm_id"], 0
    result.visitor_crm = v.crm_id
    return result


def linked_crm(v: Visitor, seg: list[Enriched], rules: Rules, next_start: int = -1) -> str:
    """The visitor's CRM id known before ``seg`` if its link reaches ``seg``, else ''.

    A link made at ``crm_since`` (a hit's ``uid``: that hit's event time; ``POST
    /api/identify``: when it was made) reaches the sessions that start after it and the
    one open then: its last hit less than the session timeout before the link, with no
    later session (``next_start``, the next one's first hit, -1 when none) begun by then.
    A link made by a ``uid`` hit of ``seg`` itself is that hit's to carry: the hits before
    it keep '' (as when the hit was first folded), so a replay after a crash writes the
    same rows as the uninterrupted run.
    """
    since = v.crm_since
    if not v.crm_id or seg[0].hit.ts >= since:
        return v.crm_id
    if any(e.hit.ts == since and e.hit.crm_id == v.crm_id for e in seg):
        return ""
    if seg[-1].hit.ts + rules.timeout_ms >= since and not 0 <= next_start <= since:
        return v.crm_id
    return ""


def _close(state: State, v: Visitor, rules: Rules, next_start: int = -1) -> SessionResult:
    _retire(state, v, {_sid(v.hits)})
    result = _emit(v, v.hits, rules, next_start)
    v.hits = []
    v.seen = set()
    state.dirty.discard((v.site, v.visitor_id))
    return result


def _resplit(
    state: State, v: Visitor, segments: list[list[Enriched]], rules: Rules
) -> list[SessionResult]:
    open_seg = segments[-1]
    if v.written is not None and v.written[0] == _sid(open_seg):
        written: tuple[str, int] | None = v.written
    else:
        _retire(state, v, {_sid(s) for s in segments[:-1]})
        written = None
    closed = _emit_all(v, segments[:-1], rules, segments[-1][0].hit.ts)
    v.hits = open_seg
    v.seen = {e.hit.hit_id for e in open_seg}
    v.written = written
    return closed


def amend(
    state: State, key: tuple[str, str], stored: list[Enriched], stored_sessions: dict[str, int]
) -> list[SessionResult]:
    """Re-split a visitor from ALL its stored hits plus what memory holds.

    ``stored`` are the visitor's hits as written (any session), ``stored_sessions``
    its live session ids → start ts.  Every session but the last is returned closed;
    the last one stays open in memory.  Ids that no longer exist get tombstones.
    """
    v = state.visitors.get(key)
    if v is None:  # its partition was revoked meanwhile: the new owner replays it
        state.amend.discard(key)
        return []
    rules = state.rules(v.site)
    pool = {e.hit.hit_id: e for e in stored}
    for e in (*v.hits, *v.late):
        pool[e.hit.hit_id] = e
    segments, _ = split(sorted(pool.values(), key=sort_key), rules)
    ids = {_sid(s) for s in segments}
    for sid, start in stored_sessions.items():
        if sid not in ids:
            state.tombstones.append(Tombstone(v.site, v.visitor_id, sid, start))
    if v.written is not None and v.written[0] not in ids and v.written[0] not in stored_sessions:
        state.tombstones.append(Tombstone(v.site, v.visitor_id, *v.written))
    v.sessions_before, v.last_end = 0, -1
    v.crm_id, v.crm_since = v.known_crm  # the link as stored; hits' uids carry it on
    open_seg = segments[-1]
    # the last session stays open only if it holds hits not yet final (from Kafka);
    # one made of stored hits alone is closed again (a later hit re-amends it)
    keep_open = any(e.partition >= 0 for e in open_seg)
    if keep_open:
        closed = _emit_all(v, segments[:-1], rules, open_seg[0].hit.ts)
    else:
        closed = _emit_all(v, segments, rules)
    v.late = []
    v.written = None
    state.amend.discard(key)
    if keep_open:
        v.hits = open_seg
        v.seen = {e.hit.hit_id for e in open_seg}
        v.last_received = max(e.hit.received for e in open_seg)
        sid = _sid(open_seg)
        v.written = (sid, stored_sessions[sid]) if sid in stored_sessions else None
        state.dirty.add(key)
    else:
        v.hits, v.seen = [], set()
    return closed


def rebuild(v: Visitor, segments: list[list[Enriched]], rules: Rules) -> list[SessionResult]:
    """Closed sessions for consecutive ``segments`` of ``v`` (numbers go on from
    ``v.sessions_before``): what ``clickstream resessionize`` writes."""
    return _emit_all(v, segments, rules)


def _emit_all(
    v: Visitor, segments: list[list[Enriched]], rules: Rules, after: int = -1
) -> list[SessionResult]:
    """``_emit`` each of consecutive ``segments`` (``after``: the start of the session
    that follows the last one, -1 when none)."""
    starts = [seg[0].hit.ts for seg in segments[1:]] + [after]
    return [_emit(v, seg, rules, nxt) for seg, nxt in zip(segments, starts, strict=False)]


def close_idle(state: State, clock: Callable[[Visitor], int]) -> list[SessionResult]:
    """Close sessions whose partition clock passed their last hit + timeout."""
    closed = []
    for key, v in list(state.visitors.items()):
        if not v.hits or v.late:
            continue
        rules = state.rules(v.site)
        if clock(v) - v.last_received > rules.timeout_ms:
            closed.append(_close(state, v, rules))
            _forget(state, key, v)
    return closed


def close_all(state: State) -> list[SessionResult]:
    """Close every open session (visitors waiting for amend must be amended first)."""
    closed = [
        _close(state, v, state.rules(v.site))
        for v in state.visitors.values()
        if v.hits and not v.late
    ]
    for key, v in list(state.visitors.items()):
        _forget(state, key, v)
    return closed


def _forget(state: State, key: tuple[str, str], v: Visitor) -> None:
    """A visitor with no open session leaves memory (history is re-read when it returns)."""
    if not v.hits and not v.late:
        del state.visitors[key]


def forget_erased(state: State, key: tuple[str, str], erased_ms: int) -> list[SessionResult]:
    """The visitor was erased at ``erased_ms``: what memory holds of it from before goes.

    Its history (sessions counted, last end, CRM link) and the hits of its open session
    received until then are dropped (the writer would drop their session anyway, and
    with it the hits that arrived after the erasure); hits received later stay, as the
    first session of a new visitor.  Returns the sessions those hits closed.
    """
    v = state.visitors.pop(key, None)
    state.dirty.discard(key)
    state.amend.discard(key)
    kept = [e for e in (*v.hits, *v.late) if e.hit.received > erased_ms] if v is not None else []
    if not kept:
        return []
    state.visitors[key] = Visitor(key[0], key[1])
    closed: list[SessionResult] = []
    for e in sorted(kept, key=sort_key):
        closed += fold(state, e)[1]
    return closed


def take_dirty(state: State) -> list[SessionResult]:
    """Provisional results for open sessions that changed since the last call."""
    out = []
    for key in state.dirty:
        v = state.visitors.get(key)
        if v is not None and v.hits and not v.late:
            seg = v.hits
            r = build_session(
                _sid(seg),
                seg,
                state.rules(v.site),
                closed=False,
                number=v.sessions_before + 1,
                crm_id=linked_crm(v, seg, state.rules(v.site)),
            )
            r.visitor_crm = v.crm_id
            v.written = (r.session_id, seg[0].hit.ts)
            out.append(r)
    state.dirty.clear()
    return out


def take_tombstones(state: State) -> list[Tombstone]:
    out, state.tombstones = state.tombstones, []
    return out


def min_open_offsets(state: State) -> dict[int, int]:
    """Per partition, the smallest offset of a hit not yet final (open or late)."""
    out: dict[int, int] = {}
    for v in state.visitors.values():
        for e in (*v.hits, *v.late):
            if e.partition >= 0 and (e.partition not in out or e.offset < out[e.partition]):
                out[e.partition] = e.offset
    return out
