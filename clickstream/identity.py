"""The identity graph: visitor ids linked to CRM ids, CRM ids merged, every change audited.

Tables (migrations 0004, 0010, 0011): ``identities`` holds the links (the sessionizer
writes one for every hit with ``uid``; :func:`link` writes them server-to-server);
``crm_merges`` maps a merged CRM id to the one it now belongs to (chains flattened);
``identity_audit`` keeps who changed what, with the affected rows before and after, so
that :func:`undo` can put them back.  Reports read the views ``resolved_identities``
and ``resolved_sessions`` (migrations 0013, 0014) which apply links and merges.

A link also makes the customer's stored sessions after its earliest one, on every
device, returning (``sessionizer.customer.settle``: ``is_returning`` is the one column of
``sessions`` a link rewrites).

Changes are serialised per process by a lock.  An undo is refused when the rows it
would restore were changed again since (undo the later change first).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from clickstream import warehouse

ID_RE = re.compile(r"^[^\x00-\x20\x7f]{1,128}$")  # printable, no spaces, <= 128
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")  # as the collector cleans a hit's uid
SITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
UNDOABLE = frozenset({"link", "merge"})
_LOCK = threading.Lock()

Links = list[list[Any]]  # [visitor_id, crm_id, first_ms, last_ms]
Merges = list[list[str]]  # [from_crm, into_crm]; into '' = not merged


class IdentityError(ValueError):
    """A change that cannot be made; the message says why."""


@dataclass(frozen=True)
class Change:
    change_id: str
    action: str
    site: str
    before: dict[str, Any]
    after: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "action": self.action,
            "site": self.site,
            "before": self.before,
            "after": self.after,
        }


def check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise IdentityError(f"{what} must be 1-128 printable characters without spaces")
    return value


def check_crm_id(value: object, what: str = "crm_id") -> str:
    """Any CRM id a hit's ``uid`` can carry (the collector keeps inner spaces, e.g.
    ``ACME 42``): 1-128 characters, no control characters, no space at either end.
    Stricter than that, such a customer could be tracked but never linked nor erased."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 128
        or CONTROL_RE.search(value)
        or value != value.strip()
    ):
        raise IdentityError(
            f"{what} must be 1-128 characters, without control characters or spaces at either end"
        )
    return value


def check_site(value: object) -> str:
    if not isinstance(value, str) or not SITE_RE.match(value):
        raise IdentityError(
            "site must be 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)"
        )
    return value


def _now_ms() -> int:
    return int(time.time() * 1000)


def _version() -> int:
    """The sessionizer's clock (microseconds): a change made now wins over the link rows
    the sessionizer wrote before it (a version in milliseconds lost to all of them)."""
    return warehouse.next_version()


def _dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _q(client: Client, sql: str, params: dict[str, Any], comment: str) -> list[list[Any]]:
    return warehouse.read_query(client, sql, parameters=params, comment=comment).rows


# --- reading the current state ----------------------------------------------------------


def links_of(client: Client, db: str, site: str, visitor_id: str) -> Links:
    return _q(
        client,
        f"SELECT visitor_id, crm_id, toUnixTimestamp64Milli(first_ts), toUnixTimestamp64Milli(last_ts) "
        f"FROM {db}.identities FINAL WHERE site = %(site)s AND visitor_id = %(v)s ORDER BY crm_id",
        {"site": site, "v": visitor_id},
        "identity:links",
    )


def merges_touching(client: Client, db: str, site: str, crms: list[str]) -> dict[str, str]:
    """from_crm -> into_crm for merges from or into any of ``crms``."""
    rows = _q(
        client,
        f"SELECT from_crm, into_crm FROM {db}.crm_merges FINAL WHERE site = %(site)s "
        f"AND (from_crm IN %(c)s OR into_crm IN %(c)s)",
        {"site": site, "c": tuple(crms)},
        "identity:merges",
    )
    return {f: i for f, i in rows}


def resolve(client: Client, db: str, site: str, crm_id: str) -> str:
    """The CRM id a CRM id belongs to now (itself unless merged)."""
    return merges_touching(client, db, site, [crm_id]).get(crm_id, crm_id)


def visitors_of(client: Client, db: str, site: str, crm_id: str) -> list[str]:
    """Every visitor id that resolves to this customer (links and merges applied)."""
    rows = _q(
        client,
        f"SELECT visitor_id FROM {db}.resolved_identities WHERE site = %(site)s AND crm_id = %(c)s "
        f"ORDER BY visitor_id",
        {"site": site, "c": crm_id},
        "identity:visitors",
    )
    return [r[0] for r in rows]


def crm_sessions_sql(db: str) -> str:
    """SQL of one customer's sessions (parameters site, crm_id) for reports and export."""
    return (
        f"SELECT * FROM {warehouse.check_name(db)}.resolved_sessions "
        "WHERE site = %(site)s AND crm_id = %(crm_id)s ORDER BY start_ts"
    )


def audit(
    client: Client, db: str, site: str, crm_id: str = "", visitor_id: str = ""
) -> list[dict[str, Any]]:
    where = "site = %(site)s"
    if crm_id:
        where += " AND (crm_id = %(c)s OR other_crm_id = %(c)s)"
    if visitor_id:
        where += " AND visitor_id = %(v)s"
    result = warehouse.read_query(
        client,
        f"SELECT * FROM {db}.identity_audit WHERE {where} ORDER BY ts, change_id",
        parameters={"site": site, "c": crm_id, "v": visitor_id},
        comment="identity:audit",
    )
    return [dict(zip(result.columns, r, strict=True)) for r in result.rows]


# --- writing ----------------------------------------------------------------------------


def _write_links(client: Client, db: str, site: str, rows: Links, deleted: bool) -> None:
    warehouse.insert(
        client,
        f"{db}.identities",
        [
            [site, v, c, _dt(first), _dt(last), _version(), int(deleted)]
            for v, c, first, last in rows
        ],
        ["site", "visitor_id", "crm_id", "first_ts", "last_ts", "version", "is_deleted"],
    )


def _write_merges(client: Client, db: str, site: str, merges: Merges) -> None:
    now = _dt(_now_ms())
    warehouse.insert(
        client,
        f"{db}.crm_merges",
        [[site, f, i, now, _version(), int(not i)] for f, i in merges],
        ["site", "from_crm", "into_crm", "merged_at", "version", "is_deleted"],
    )


# the columns of an identity_audit row, in the order _record and erase write them
AUDIT_COLUMNS = [
    "change_id",
    "ts",
    "site",
    "actor",
    "action",
    "visitor_id",
    "crm_id",
    "other_crm_id",
    "ref_change_id",
    "before",
    "after",
]


def _record(
    client: Client,
    db: str,
    change: Change,
    actor: str,
    visitor_id: str = "",
    crm_id: str = "",
    other: str = "",
    ref: str = "",
) -> None:
    warehouse.insert(
        client,
        f"{db}.identity_audit",
        [
            [
                change.change_id,
                _dt(_now_ms()),
                change.site,
                actor[:200],
                change.action,
                visitor_id,
                crm_id,
                other,
                ref,
                orjson.dumps(change.before).decode(),
                orjson.dumps(change.after).decode(),
            ]
        ],
        AUDIT_COLUMNS,
    )


def _apply(
    client: Client, db: str, site: str, state: dict[str, Any], current: dict[str, Any]
) -> None:
    """Make the affected rows equal ``state``: write its rows, delete rows only in current."""
    wanted = {(v, c) for v, c, _, _ in state.get("links", [])}
    gone = [row for row in current.get("links", []) if (row[0], row[1]) not in wanted]
    if gone:
        _write_links(client, db, site, gone, deleted=True)
    if state.get("links"):
        _write_links(client, db, site, state["links"], deleted=False)
    if state.get("merges"):
        _write_merges(client, db, site, state["merges"])


def link(client: Client, db: str, site: str, visitor_id: str, crm_id: str, actor: str) -> Change:
    """Link a visitor id to a CRM id (it becomes the visitor's current CRM id)."""
    db, site = warehouse.check_name(db), check_site(site)
    check_id(visitor_id, "visitor_id")
    check_crm_id(crm_id, "crm_id")
    with _LOCK:
        before = links_of(client, db, site, visitor_id)
        now = _now_ms()
        first = next((r[2] for r in before if r[1] == crm_id), now)
        row = [visitor_id, crm_id, first, max(now, max((r[3] for r in before), default=0) + 1)]
        after = [r for r in before if r[1] != crm_id] + [row]
        change = Change(uuid.uuid4().hex, "link", site, {"links": before}, {"links": after})
        _write_links(client, db, site, [row], deleted=False)
        _record(client, db, change, actor, visitor_id=visitor_id, crm_id=crm_id)
    # the customer's sessions after its earliest one, on any device, are returning now
    # here, not on top: sessionizer.writer imports clickstream.erase, which imports this module
    from sessionizer import customer

    customer.settle(client, db, [(site, crm_id)])
    return change


def merge(client: Client, db: str, site: str, from_crm: str, into_crm: str, actor: str) -> Change:
    """From now on ``from_crm`` (and whatever was merged into it) resolves to ``into_crm``."""
    db, site = warehouse.check_name(db), check_site(site)
    check_crm_id(from_crm, "from_crm")
    check_crm_id(into_crm, "into_crm")
    if from_crm == into_crm:
        raise IdentityError("cannot merge a CRM id into itself")
    with _LOCK:
        touching = merges_touching(client, db, site, [from_crm, into_crm])
        if from_crm in touching:
            raise IdentityError(
                f"{from_crm!r} is already merged into {touching[from_crm]!r}; undo that first"
            )
        target = touching.get(into_crm, into_crm)
        if target == from_crm:
            raise IdentityError(
                f"{into_crm!r} is merged into {from_crm!r}: that merge would make a loop"
            )
        followers = sorted(f for f, i in touching.items() if i == from_crm)
        before = [[from_crm, ""]] + [[f, from_crm] for f in followers]
        after = [[from_crm, target]] + [[f, target] for f in followers]
        change = Change(uuid.uuid4().hex, "merge", site, {"merges": before}, {"merges": after})
        _write_merges(client, db, site, after)
        _record(client, db, change, actor, crm_id=from_crm, other=target)
    return change


def _current(client: Client, db: str, site: str, state: dict[str, Any]) -> dict[str, Any]:
    """The present rows for the keys a change touched, in the change's own shape."""
    out: dict[str, Any] = {}
    if "links" in state:
        visitors = sorted({row[0] for row in state["links"]})
        out["links"] = [r for v in visitors for r in links_of(client, db, site, v)]
    if "merges" in state:
        keys = [f for f, _ in state["merges"]]
        found = merges_touching(client, db, site, keys)
        out["merges"] = [[f, found.get(f, "")] for f in keys]
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(d: dict[str, Any]) -> dict[str, Any]:
        return {k: sorted(map(tuple, v)) for k, v in d.items()}

    return norm(a) == norm(b)


def undo(client: Client, db: str, site: str, change_id: str, actor: str) -> Change:
    """Put back the rows a link or merge changed, if nothing changed them since."""
    db, site = warehouse.check_name(db), check_site(site)
    if not isinstance(change_id, str) or not re.fullmatch(r"[0-9a-f]{32}", change_id):
        raise IdentityError("change_id must be the 32 hex digits of a change")
    with _LOCK:
        rows = _q(
            client,
            f"SELECT action, before, after FROM {db}.identity_audit "
            f"WHERE site = %(site)s AND change_id = %(id)s",
            {"site": site, "id": change_id},
            "identity:undo",
        )
        if not rows:
            raise IdentityError(f"no change {change_id} for site {site!r}")
        action, before_raw, after_raw = rows[0]
        if action not in UNDOABLE:
            raise IdentityError(f"a {action} cannot be undone (only {', '.join(sorted(UNDOABLE))})")
        undone = _q(
            client,
            f"SELECT count() FROM {db}.identity_audit WHERE site = %(site)s "
            f"AND action = 'undo' AND ref_change_id = %(id)s",
            {"site": site, "id": change_id},
            "identity:undo",
        )
        if undone[0][0]:
            raise IdentityError(f"change {change_id} is already undone")
        before, after = orjson.loads(before_raw), orjson.loads(after_raw)
        current = _current(client, db, site, after)
        if not _same(current, after):
            raise IdentityError(
                f"the rows of change {change_id} changed since; undo the later changes first"
            )
        change = Change(uuid.uuid4().hex, "undo", site, current, before)
        _apply(client, db, site, before, current)
        _record(client, db, change, actor, ref=change_id)
    return change
