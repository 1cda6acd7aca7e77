"""Rebuild one site's sessions from the raw ``hits`` in ClickHouse, for days whose
sessions must follow new rules (timeout, campaign/midnight split, caps, search params).

The sessions that START in ``[from, to]`` (UTC days) are re-split from their hits with
the current settings; session numbers go on from each visitor's earlier sessions and
its CRM link; ids that no longer exist are deleted (``is_deleted=1``, higher version).
Sessions after ``to`` keep their numbers.  Run it for closed days (not while the live
sessionizer still writes the same sessions).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from clickstream.settings import Settings
from sessionizer import customer, sessions, stored
from sessionizer.enrich import Enriched
from sessionizer.flags import SessionResult
from sessionizer.loop import context_for, rules_for
from sessionizer.split import sort_key, split
from sessionizer.writer import Writer

MAX_DAYS = 366
BATCH = 2000  # visitors per write


@dataclass(frozen=True)
class Summary:
    hits: int
    sessions_before: int
    sessions_after: int
    deleted: int
    capped: int


def resessionize(
    client: Client,
    settings: Settings,
    site: str,
    day_from: dt.date,
    day_to: dt.date,
    dry_run: bool = False,
) -> Summary:
    if day_to < day_from:
        raise ValueError(f"--to {day_to} is before --from {day_from}")
    if (day_to - day_from).days + 1 > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days at a time")
    db = warehouse.check_name(settings.database)
    rules = rules_for(settings)(site)
    ctx = context_for(settings)
    lo, hi = stored.day_start_ms(day_from), stored.day_start_ms(day_to + dt.timedelta(days=1))
    params = {"site": site, "lo": lo, "hi": hi}
    in_range = (
        "site = %(site)s AND start_ts >= fromUnixTimestamp64Milli(%(lo)s, 'UTC') "
        "AND start_ts < fromUnixTimestamp64Milli(%(hi)s, 'UTC')"
    )
    old = warehouse.read_query(
        client,
        f"SELECT visitor_id, session_id, toUnixTimestamp64Milli(start_ts) "
        f"FROM {db}.sessions FINAL WHERE {in_range}",
        params,
        comment="resessionize",
    ).rows
    rows = warehouse.read_query(
        client,
        f"SELECT {', '.join(stored.HIT_FIELDS)} FROM {db}.hits FINAL WHERE site = %(site)s "
        f"AND session_id IN (SELECT session_id FROM {db}.sessions FINAL WHERE {in_range})",
        params,
        comment="resessionize",
    ).rows
    before = warehouse.read_query(
        client,
        f"SELECT visitor_id, count() FROM {db}.sessions FINAL WHERE site = %(site)s "
        f"AND start_ts < fromUnixTimestamp64Milli(%(lo)s, 'UTC') GROUP BY visitor_id",
        params,
        comment="resessionize",
    ).rows
    links = warehouse.read_query(
        client,
        f"SELECT visitor_id, argMax(crm_id, last_ts), toUnixTimestamp64Milli(min(first_ts)) "
        f"FROM {db}.identities FINAL WHERE site = %(site)s GROUP BY visitor_id",
        params,
        comment="resessionize",
    ).rows
    counts = {vid: int(n) for vid, n in before}
    crm = {vid: (c, int(since)) for vid, c, since in links}
    by_visitor: dict[str, list[Enriched]] = {}
    for r in rows:
        by_visitor.setdefault(r[1], []).append(stored.to_enriched(r, ctx(site)))
    old_ids: dict[str, tuple[str, int]] = {sid: (vid, int(start)) for vid, sid, start in old}
    results: list[SessionResult] = []
    capped = 0
    for vid, hits in sorted(by_visitor.items()):
        link = crm.get(vid, ("", 0))
        v = sessions.Visitor(
            site,
            vid,
            sessions_before=counts.get(vid, 0),
            crm_id=link[0],
            crm_since=link[1],
            known_crm=link,
        )
        segments, cuts = split(sorted(hits, key=sort_key), rules)
        capped += cuts
        results += sessions.rebuild(v, segments, rules)
    live = {r.session_id for r in results}
    tombstones = [
        sessions.Tombstone(site, vid, sid, start)
        for sid, (vid, start) in old_ids.items()
        if sid not in live
    ]
    if not dry_run:
        settle = customer.mark_returning(client, db, results, set())
        writer = Writer(client, db)
        for i in range(0, len(results), BATCH):
            writer.write(results[i : i + BATCH])
            settle |= writer.links_first
        writer.write([], tombstones)
        customer.settle(client, db, settle)
    return Summary(len(rows), len(old_ids), len(results), len(tombstones), capped)
