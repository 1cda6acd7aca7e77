"""History (sessions before a visitor's first hit) stays right when old hits are sent again."""

from __future__ import annotations

import datetime as dt

from clickstream import warehouse
from clickstream.hit import Hit
from sessionizer.enrich import Enriched
from sessionizer.flags import SessionResult
from sessionizer.loop import History


def hit(ts: int) -> Hit:
    return Hit(site="s", visitor_id="v", hit_id=f"h{ts}", ts=ts, received=ts)


def closed(number: int, start: int) -> SessionResult:
    return SessionResult(session_id=f"x{number}", hits=[Enriched(hit=hit(start))], flags=[],
                         session={"site": "s", "visitor_id": "v", "session_number": number, "crm_id": ""},
                         version=1, closed=True)


def test_replayed_hits_recount_history_instead_of_trusting_the_cache(ch, database):
    def at(ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)

    cols = ["site", "session_id", "visitor_id", "start_ts", "end_ts", "version"]
    rows = [["s", f"x{i}", "v", at(t), at(t + 1000), 1] for i, t in ((1, 1_000_000), (2, 9_000_000))]
    warehouse.insert(ch, f"{database}.sessions", rows, cols)
    history = History(ch, database)
    history.prefetch([hit(20_000_000)])  # a live hit after both sessions
    assert history("s", "v") == (2, "")
    history.closed([closed(3, 20_000_000)])
    history.prefetch([hit(30_000_000)])  # later again: the cache is right, no recount
    assert history("s", "v") == (3, "")
    history.prefetch([hit(1_000_000), hit(9_000_000)])  # the old hits sent again (re-import)
    assert history("s", "v") == (0, "")
    history.prefetch([hit(5_000_000)])
    assert history("s", "v") == (1, "")
