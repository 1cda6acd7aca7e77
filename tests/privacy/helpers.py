"""Real sessionizer steps (enrich, fold, close, Writer) on hand-made hits, for chDB tests."""

from __future__ import annotations

import itertools

from clickhouse_connect.driver.client import Client

from clickstream.hit import Hit
from sessionizer import sessions
from sessionizer.enrich import Context, enrich
from sessionizer.flags import Rules, SessionResult
from sessionizer.writer import Writer

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000
_ids = itertools.count(1)


def hit(
    site: str, vid: str, minute: float, path: str = "/", crm: str = "", received: int | None = None
) -> Hit:
    ts = T0 + int(minute * MIN)
    return Hit(
        site=site,
        visitor_id=vid,
        hit_id=f"h{next(_ids):06d}",
        ts=ts,
        received=ts if received is None else received,
        url=f"https://shop.example{path}",
        crm_id=crm,
    )


def sessionize(
    hits: list[Hit], history: dict[tuple[str, str], tuple[int, str]] | None = None
) -> list[SessionResult]:
    """The pure fold over these hits, every session closed; ``history`` as the loop's cache."""
    known = history or {}
    state = sessions.State(
        rules=lambda site: Rules(), history=lambda site, vid: known.get((site, vid), (0, ""))
    )
    ctx = Context(search_params=frozenset({"q"}))
    out: list[SessionResult] = []
    for i, h in enumerate(sorted(hits, key=lambda h: (h.ts, h.hit_id))):
        _, closed = sessions.fold(state, enrich(h, ctx, 0, i))
        out += closed
    return out + sessions.close_all(state)


def write(client: Client, database: str, hits: list[Hit]) -> list[SessionResult]:
    results = sessionize(hits)
    Writer(client, database).write(results)
    return results
