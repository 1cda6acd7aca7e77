"""Returning through the CRM customer (DESIGN.md: a session is returning when the visitor
*or its CRM customer* had an earlier session).

The fold numbers sessions per visitor id (``session_number``); a visitor's first session
that carries a CRM id is returning as well when another visitor id linked to that CRM id
(``identities``, or a session in the same write) started a session before it — the
customer's phone after their laptop.  One batched lookup per write for such sessions; an
open session's answer is kept until it closes (its start does not change).
"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from sessionizer.flags import SessionResult

Key = tuple[str, str]
CACHE_MAX = 100_000
CHUNK = 1000


def _candidates(results: list[SessionResult]) -> list[SessionResult]:
    return [r for r in results if r.session["crm_id"] and not r.session["is_returning"]]


def customer_starts(client: Client, db: str, customers: list[Key]) -> dict[Key, dict[str, int]]:
    """Per (site, crm id): its linked visitor ids -> start (ms) of their first stored session."""
    out: dict[Key, dict[str, int]] = {k: {} for k in customers}
    for i in range(0, len(customers), CHUNK):
        _customer_starts(client, db, tuple(customers[i : i + CHUNK]), out)
    return out


def _customer_starts(
    client: Client, db: str, customers: tuple[Key, ...], out: dict[Key, dict[str, int]]
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
    first = {
        (site, vid): int(start)
        for site, vid, start in warehouse.read_query(
            client,
            f"SELECT site, visitor_id, min(toUnixTimestamp64Milli(start_ts)) FROM {db}.sessions FINAL "
            "WHERE (site, visitor_id) IN %(keys)s GROUP BY site, visitor_id",
            parameters={"keys": visitors},
            comment="sessionizer:customer-sessions",
        ).rows
    }
    for site, crm, vid in links:
        if (site, vid) in first:
            out[(site, crm)][vid] = first[(site, vid)]


def mark_returning(
    client: Client, db: str, results: list[SessionResult], cache: dict[str, bool]
) -> None:
    """Set ``is_returning`` on sessions whose CRM customer had an earlier session on
    another visitor id (in place; ``cache``: session id -> answer, for open sessions)."""
    cands = _candidates(results)
    if not cands:
        return
    if len(cache) > CACHE_MAX:
        cache.clear()
    need = [r for r in cands if r.session_id not in cache]
    if need:
        customers = sorted({(r.session["site"], r.session["crm_id"]) for r in need})
        stored = customer_starts(client, db, customers)
        for r in need:
            s = r.session
            starts = stored[(s["site"], s["crm_id"])]
            cache[r.session_id] = any(
                start < s["start_ts"] for vid, start in starts.items() if vid != s["visitor_id"]
            )
    in_batch: dict[Key, list[tuple[str, int]]] = {}
    for r in results:
        s = r.session
        if s["crm_id"]:
            in_batch.setdefault((s["site"], s["crm_id"]), []).append(
                (s["visitor_id"], s["start_ts"])
            )
    for r in cands:
        s = r.session
        earlier = any(
            vid != s["visitor_id"] and start < s["start_ts"]
            for vid, start in in_batch[(s["site"], s["crm_id"])]
        )
        if cache[r.session_id] or earlier:
            s["is_returning"] = 1
        if r.closed:
            cache.pop(r.session_id, None)
