"""Returning through the CRM customer (DESIGN.md: a session is returning when the visitor
*or its CRM customer* had an earlier session; links are retroactive and across devices).

A session's customers are the CRM id on its row and the CRM id its visitor id is linked
to (``SessionResult.visitor_crm``); a customer's sessions are all the sessions of the
visitor ids linked to it in ``identities`` (anonymous ones from before the link too, as
``resolved_sessions`` and the customers report count them).  A session is returning when
its visitor had an earlier session (``session_number > 1``, the fold's answer) or another
visitor id of one of its customers started a session before it (strictly before: two
devices starting in the same millisecond are both new).

``session_number`` stays per visitor id: DESIGN.md says only that it counts from 1, the
daily ``returning`` report counts visitor ids, and renumbering a customer's sessions
whenever a device is linked would rewrite every session of every device.  So a phone's
first session is ``session_number`` 1 and, for a known customer, ``is_returning`` 1.

Two moments decide ``is_returning``:

- :func:`mark_returning`, before a write: the sessions being written, against what is
  stored and the other sessions of the same write.  A "returning" answer of an open
  session is cached until it closes (its start does not change, and an answer of 1 never
  goes back); a "not returning" answer is asked again at the next write, so a link or an
  earlier session that another process stored meanwhile is seen by the next rewrite.
- :func:`settle`, after a write and after every link (``identity.link``: the API and the
  CLI): a customer's stored sessions that start after the customer's earliest session but
  say 0 are rewritten with ``is_returning`` 1 — the row as stored, one ``version`` above the
  one read, so a write the sessionizer made since (a grown open session) still wins and is
  itself decided again.  After a write it runs for the customers whose link the write
  made or holds the earliest hit of (``Writer.links_first``: not every hit of a customer
  signed in for long, each settle scans the site's sessions by visitor id), whose stored sessions on other visitor ids start after a session of the
  write, and of every session closed with 0 (it checks the final row against what other
  processes stored while it was decided).

Both read the same stored state (the customer's links, each linked visitor's first start
and its sessions that say 0), so a replay after a crash — even between a write and its
settle — writes the same rows.  An answer only ever goes from 0 to 1: undoing a link or
erasing a device does not make a session new again.  Merges (``crm_merges``) are not
followed here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from sessionizer.flags import SessionResult
from sessionizer.writer import SESSION_COLUMNS

Key = tuple[str, str]
CACHE_MAX = 100_000
CHUNK = 1000


@dataclass(slots=True)
class Stored:
    """One linked visitor id as stored: its first session's start and the sessions that
    say ``is_returning`` 0, as (session id, start) in ms."""

    first: int
    zeros: list[tuple[str, int]] = field(default_factory=list)


def customer_view(client: Client, db: str, customers: list[Key]) -> dict[Key, dict[str, Stored]]:
    """Per (site, crm id): its linked visitor ids -> what is stored of their sessions."""
    out: dict[Key, dict[str, Stored]] = {k: {} for k in customers}
    for i in range(0, len(customers), CHUNK):
        _customer_view(client, db, tuple(customers[i : i + CHUNK]), out)
    return out


def _customer_view(
    client: Client, db: str, customers: tuple[Key, ...], out: dict[Key, dict[str, Stored]]
) -> None:
    links = warehouse.read_query(
        client,
        f"SELECT DISTINCT site, crm_id, visitor_id FROM {db}.identities FINAL "
        "WHERE (site, crm_id) IN %(keys)s",
        parameters={"keys": customers},
        comment="sessionizer:customer-links",
    ).rows
    if not links:
        return
    visitors = tuple({(site, vid) for site, _, vid in links})
    stored = {
        (site, vid): Stored(int(first), [(sid, int(start)) for sid, start in zeros])
        for site, vid, first, zeros in warehouse.read_query(
            client,
            f"SELECT site, visitor_id, min(toUnixTimestamp64Milli(start_ts)), "
            f"groupArrayIf((session_id, toUnixTimestamp64Milli(start_ts)), is_returning = 0) "
            f"FROM {db}.sessions FINAL WHERE (site, visitor_id) IN %(keys)s "
            "GROUP BY site, visitor_id",
            parameters={"keys": visitors},
            comment="sessionizer:customer-sessions",
        ).rows
    }
    for site, crm, vid in links:
        if (site, vid) in stored:
            out[(site, crm)][vid] = stored[(site, vid)]


def customers_of(r: SessionResult) -> list[Key]:
    s = r.session
    return [(s["site"], c) for c in dict.fromkeys((s["crm_id"], r.visitor_crm)) if c]


def mark_returning(
    client: Client, db: str, results: list[SessionResult], cache: set[str]
) -> set[Key]:
    """Set ``is_returning`` on sessions whose CRM customer had an earlier session on
    another visitor id (in place; ``cache``: open session ids known to be returning).
    Returns the customers to :func:`settle` once these results are written."""
    settle_after: set[Key] = set()
    cands = [r for r in results if not r.session["is_returning"] and customers_of(r)]
    if not cands:
        return settle_after
    if len(cache) > CACHE_MAX:
        cache.clear()
    need = [r for r in cands if r.session_id not in cache]
    stored = customer_view(client, db, sorted({k for r in need for k in customers_of(r)}))
    in_batch: dict[Key, list[tuple[str, int]]] = {}
    for r in results:
        for k in customers_of(r):
            in_batch.setdefault(k, []).append((r.session["visitor_id"], r.session["start_ts"]))
    for r in cands:
        s, vid, start = r.session, r.session["visitor_id"], r.session["start_ts"]
        earlier = r.session_id in cache
        for k in customers_of(r):
            others = [st for v, st in stored.get(k, {}).items() if v != vid]
            earlier = earlier or any(st.first < start for st in others)
            earlier = earlier or any(v != vid and t < start for v, t in in_batch[k])
            if any(t > start for st in others for _, t in st.zeros):
                settle_after.add(k)  # a device's later session, stored as not returning
        if earlier:
            s["is_returning"] = 1
            if not r.closed:
                cache.add(r.session_id)
        elif r.closed:
            settle_after.update(customers_of(r))
        if r.closed:
            cache.discard(r.session_id)
    return settle_after


def settle(client: Client, db: str, customers: Iterable[Key]) -> int:
    """Rewrite with ``is_returning`` 1 the stored sessions of these customers that start
    after the customer's earliest session but say 0; returns how many."""
    keys = sorted(set(customers))
    if not keys:
        return 0
    late: dict[Key, int] = {}  # (site, session id) -> start ms
    for (site, _), visitors in customer_view(client, db, keys).items():
        if not visitors:
            continue
        earliest = min(st.first for st in visitors.values())
        for st in visitors.values():
            late.update({(site, sid): start for sid, start in st.zeros if start > earliest})
    todo = sorted(late)
    for i in range(0, len(todo), CHUNK):
        _rewrite_returning(client, db, todo[i : i + CHUNK], late)
    return len(late)


def _rewrite_returning(client: Client, db: str, keys: list[Key], starts: dict[Key, int]) -> None:
    """The rows as stored, with ``is_returning`` 1, one version above the row read: a
    write made since the read (a higher clock) still wins.  Read and insert hold the
    engine lock, so the sessionizer of the same process cannot write in between."""
    days = tuple(sorted({dt.datetime.fromtimestamp(starts[k] / 1000, dt.UTC).date() for k in keys}))
    cols = ", ".join(SESSION_COLUMNS)
    with warehouse.CHDB_LOCK:
        rows = warehouse.read_query(
            client,
            f"SELECT {cols} FROM {db}.sessions FINAL WHERE (site, session_id) IN %(keys)s "
            "AND toDate(start_ts) IN %(days)s AND is_returning = 0",
            parameters={"keys": tuple(keys), "days": days},
            comment="sessionizer:settle-returning",
        ).rows
        ret, ver = SESSION_COLUMNS.index("is_returning"), SESSION_COLUMNS.index("version")
        for row in rows:
            row[ret], row[ver] = 1, row[ver] + 1
        warehouse.insert(client, f"{db}.sessions", rows, SESSION_COLUMNS)
