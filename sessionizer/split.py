"""Where one session ends and the next begins: the rules and a sequential split.

A visitor's hits, sorted by event time ``(ts, hit_id)``, are cut into sessions by a
left-to-right scan: hit ``e`` starts a new session when, against the session so far,

- ``timeout``: the gap to the previous hit is over ``timeout_ms`` (30 min);
- ``campaign``: ``e`` carries a campaign (``utm_source/medium/campaign``) different from
  the session's current one (its latest campaign, or none);
- ``midnight``: ``split_midnight`` is on and ``e`` falls on another local day
  (the site's ``time_zone``) than the previous hit;
- ``max_hits``: the session already has ``max_hits`` hits;
- ``max_duration``: ``e`` is over ``max_duration_ms`` after the session's first hit.

Each decision depends only on the hits before ``e``, so the online fold (hits appended
in order) and :func:`split` over the same sorted hits give the same sessions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clickstream.settings import Settings, SettingsError
from sessionizer.enrich import Enriched

CAPS = frozenset({"max_hits", "max_duration"})


@dataclass(frozen=True, slots=True)
class Rules:
    timeout_ms: int = 30 * 60_000
    quick_back_ms: int = 10_000
    max_hits: int = 10_000
    max_duration_ms: int = 24 * 3600_000
    split_midnight: bool = False
    time_zone: str = "UTC"


def rules_from(settings: Settings) -> Rules:
    """One site's rules from its settings; a bad time zone names the setting."""
    zone(settings.time_zone)
    return Rules(
        timeout_ms=int(settings.session_timeout_min * 60_000),
        quick_back_ms=int(settings.quick_back_s * 1000),
        max_hits=int(settings.max_session_hits),
        max_duration_ms=int(settings.max_session_hours * 3600_000),
        split_midnight=bool(settings.session_split_midnight),
        time_zone=settings.time_zone,
    )


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"setting 'time_zone': {name!r} is not an IANA time zone (e.g. UTC, Europe/Paris)"
        ) from None


def local_day(ts_ms: int, tz: str) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ms / 1000, zone(tz)).date()


def campaign(e: Enriched) -> tuple[str, str, str]:
    h = e.hit
    return (h.utm_source, h.utm_medium, h.utm_campaign)


def current_campaign(session: list[Enriched]) -> tuple[str, str, str]:
    for h in reversed(session):
        c = campaign(h)
        if any(c):
            return c
    return ("", "", "")


def starts_new(session: list[Enriched], e: Enriched, rules: Rules) -> str:
    """Why ``e`` (sorted after every hit of ``session``) starts a new session, or ''."""
    if not session:
        return ""
    last = session[-1].hit.ts
    ts = e.hit.ts
    if ts - last > rules.timeout_ms:
        return "timeout"
    c = campaign(e)
    if any(c) and c != current_campaign(session):
        return "campaign"
    if rules.split_midnight and local_day(ts, rules.time_zone) != local_day(last, rules.time_zone):
        return "midnight"
    if len(session) >= rules.max_hits:
        return "max_hits"
    if ts - session[0].hit.ts > rules.max_duration_ms:
        return "max_duration"
    return ""


def sort_key(e: Enriched) -> tuple[int, str]:
    return (e.hit.ts, e.hit.hit_id)


def split(hits: list[Enriched], rules: Rules) -> tuple[list[list[Enriched]], int]:
    """Sorted hits → sessions, and how many cuts were caps (max hits / duration)."""
    out: list[list[Enriched]] = []
    capped = 0
    current: list[Enriched] = []
    for e in hits:
        reason = starts_new(current, e, rules)
        if reason:
            out.append(current)
            current = []
            capped += reason in CAPS
        current.append(e)
    if current:
        out.append(current)
    return out, capped
