"""Data rights: erase everything about a visitor or a CRM id, export it, keep it erased.

:func:`erase` finds the person's visitor ids (a CRM id's links, the CRM ids merged
into it, rows carrying it), records them in ``erased`` (hashes only) so a replay
cannot bring them back, then deletes their rows from every table of the database
that has a ``visitor_id`` or ``crm_id`` column (hits, sessions, identities and anything
derived that others add later), plus ``crm_merges`` and the ``identity_audit`` rows
naming them, with ``ALTER TABLE … DELETE … SETTINGS mutations_sync = 2`` (synchronous,
on ClickHouse servers and chDB alike).  It returns the rows deleted per table.

:class:`ErasedSet` answers ``is_erased(site, visitor_id)`` from a cache refreshed every
few seconds; the sessionizer writer drops, through :func:`drop_erased`, every session
of an erased person whose hits were received before the erasure (a replay, or a
session still open when the erase ran).  The same visitor id coming back later is
tracked again, as a new visitor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from clickstream.identity import AUDIT_COLUMNS, IdentityError, check_crm_id, check_id, check_site
from clickstream.metrics import METRICS

if TYPE_CHECKING:
    from sessionizer.flags import SessionResult

SKIP_TABLES = frozenset({"erased", "schema_migrations"})
CHUNK = 200


def id_hash(site: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{site}\x1f{kind}\x1f{value}".encode()).hexdigest()


class ErasedSet:
    """Hashes of erased visitor and CRM ids with their erasure time, cached."""

    def __init__(self, client: Client, database: str, refresh_s: float = 5.0):
        self.client = client
        self.db = warehouse.check_name(database)
        self.refresh_s = refresh_s
        self._at: dict[str, int] = {}
        self._log: list[tuple[str, int]] = []  # (hash, erased at) in the order learnt
        self._loaded = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        if time.monotonic() - self._loaded < self.refresh_s:
            return
        rows = warehouse.read_query(
            self.client,
            f"SELECT id_hash, toUnixTimestamp64Milli(max(erased_at)) "
            f"FROM {self.db}.erased GROUP BY id_hash",
            comment="erase:cache",
        ).rows
        self._learn(rows)
        self._loaded = time.monotonic()

    def _learn(self, rows: Iterable[tuple[str, int]] | Iterable[list[Any]]) -> None:
        with self._lock:
            for h, at in rows:
                if at > self._at.get(h, -1):
                    self._at[h] = at
                    self._log.append((h, at))

    def add(self, hashes: Iterable[str], at_ms: int) -> None:
        self._learn((h, at_ms) for h in hashes)

    def learnt_since(self, position: int) -> tuple[list[tuple[str, int]], int]:
        """Erasures learnt after ``position`` (0 at first) and the position to ask from next:
        how a sessionizer hears of an erase that ran in another process."""
        self._refresh()
        with self._lock:
            return self._log[position:], len(self._log)

    def erased_at(self, site: str, kind: str, value: str) -> int | None:
        if not value:
            return None
        self._refresh()
        return self._at.get(id_hash(site, kind, value))

    def is_erased(self, site: str, visitor_id: str, received_ms: int | None = None) -> bool:
        """Erased, and (when given) the hit was received no later than the erasure."""
        at = self.erased_at(site, "visitor", visitor_id)
        return at is not None and (received_ms is None or received_ms <= at)


_SETS: dict[tuple[int, str], ErasedSet] = {}
_SETS_LOCK = threading.Lock()


def erased_set(client: Client, database: str) -> ErasedSet:
    """The process-wide set for a client and database (erase and writer share it)."""
    with _SETS_LOCK:
        key = (id(client), database)
        if key not in _SETS:
            _SETS[key] = ErasedSet(client, database)
        return _SETS[key]


def drop_erased(results: list[SessionResult], erased: ErasedSet) -> list[SessionResult]:
    """Sessions to write: those with a hit of an erased person from before the erasure go.

    A later session of an erased visitor is kept, but loses a CRM id that only the
    sessionizer's memory gave it (no hit of the session carries it): the erased link
    must not come back through the in-process visitor state.
    """
    kept = []
    for r in results:
        site, visitor, crm = r.session["site"], r.session["visitor_id"], r.session["crm_id"]
        first = min((e.hit.received for e in r.hits), default=0)
        crms = {crm} | {e.hit.crm_id for e in r.hits}
        if erased.is_erased(site, visitor, first) or any(
            (at := erased.erased_at(site, "crm", c)) is not None and first <= at for c in crms
        ):
            METRICS.inc("erased_sessions_dropped_total")
            continue
        carried = {e.hit.crm_id for e in r.hits}
        if (
            crm
            and crm not in carried
            and (
                erased.erased_at(site, "visitor", visitor) is not None
                or erased.erased_at(site, "crm", crm) is not None
            )
        ):
            r.session["crm_id"] = ""
            for f in r.flags:
                if f.crm_id == crm:
                    f.crm_id = ""
        kept.append(r)
    return kept


# --- finding a person -------------------------------------------------------------------


def _rows(client: Client, sql: str, params: dict[str, Any], comment: str) -> list[list[Any]]:
    return warehouse.read_query(client, sql, parameters=params, comment=comment).rows


def person(
    client: Client, db: str, site: str, visitor_id: str = "", crm_id: str = ""
) -> tuple[list[str], list[str]]:
    """(visitor ids, CRM ids) of one person: a visitor alone, or a CRM id with its
    merged CRM ids and every visitor linked to them or seen with them."""
    if bool(visitor_id) == bool(crm_id):
        raise IdentityError("give exactly one of visitor_id or crm_id")
    if visitor_id:
        return [check_id(visitor_id, "visitor_id")], []
    check_crm_id(crm_id, "crm_id")
    p: dict[str, Any] = {"site": site, "c": crm_id}
    crms = sorted(
        {crm_id}
        | {
            r[0]
            for r in _rows(
                client,
                f"SELECT from_crm FROM {db}.crm_merges FINAL WHERE site = %(site)s AND into_crm = %(c)s",
                p,
                "erase:person",
            )
        }
    )
    p["cs"] = tuple(crms)
    visitors = {
        r[0]
        for r in _rows(
            client,
            f"SELECT DISTINCT visitor_id FROM {db}.identities WHERE site = %(site)s AND crm_id IN %(cs)s",
            p,
            "erase:person",
        )
    }
    for table in ("sessions", "hits"):
        visitors |= {
            r[0]
            for r in _rows(
                client,
                f"SELECT DISTINCT visitor_id FROM {db}.{table} WHERE site = %(site)s AND crm_id IN %(cs)s",
                p,
                "erase:person",
            )
        }
    return sorted(visitors), crms


def _tables(client: Client, db: str) -> list[tuple[str, str, set[str]]]:
    """(table, engine, columns) of every MergeTree-family table of the database."""
    rows = _rows(
        client,
        "SELECT t.name, t.engine, groupArray(c.name) FROM system.tables AS t "
        "INNER JOIN system.columns AS c ON c.database = t.database AND c.table = t.name "
        "WHERE t.database = %(db)s AND t.engine LIKE '%%MergeTree%%' GROUP BY t.name, t.engine "
        "ORDER BY t.name",
        {"db": db},
        "erase:tables",
    )
    return [(name, engine, set(cols)) for name, engine, cols in rows if name not in SKIP_TABLES]


def _params(site: str, visitors: list[str], crms: list[str]) -> dict[str, Any]:
    return {
        "site": site,
        "vs": tuple(visitors) or ("",),
        "cs": tuple(crms) or ("",),
        "needles": [orjson.dumps(i).decode() for i in visitors + crms],
    }


def _conditions(columns: set[str], n_visitors: int, n_crms: int) -> list[str]:
    out: list[str] = []
    if "visitor_id" in columns and n_visitors:
        out.append("visitor_id IN %(vs)s")
    for col in ("crm_id", "other_crm_id", "from_crm", "into_crm"):
        if col in columns and n_crms:
            out.append(f"{col} IN %(cs)s")
    for col in ("before", "after"):  # the audit's JSON snapshots
        if col in columns and n_visitors + n_crms:
            out.append(f"multiSearchAny({col}, %(needles)s)")
    return out


@dataclass(frozen=True)
class Erasure:
    """What :func:`erase_person` did: the ids it erased, when, and the rows per table."""

    site: str
    visitor_ids: list[str]
    crm_ids: list[str]
    at_ms: int
    deleted: dict[str, int]

    def answer(self) -> dict[str, Any]:
        return {
            "visitors": len(self.visitor_ids),
            "crm_ids": len(self.crm_ids),
            "deleted": self.deleted,
        }


def erase(
    client: Client,
    db: str,
    site: str,
    visitor_id: str = "",
    crm_id: str = "",
    actor: str = "",
    erased: ErasedSet | None = None,
) -> dict[str, Any]:
    """Delete every row of one person; returns {"visitors": n, "crm_ids": n, "deleted": {table: rows}}."""
    return erase_person(client, db, site, visitor_id, crm_id, actor, erased).answer()


def erase_person(
    client: Client,
    db: str,
    site: str,
    visitor_id: str = "",
    crm_id: str = "",
    actor: str = "",
    erased: ErasedSet | None = None,
) -> Erasure:
    """:func:`erase`, answering which ids went and when (a sessionizer forgets them)."""
    db, site = warehouse.check_name(db), check_site(site)
    visitors, crms = person(client, db, site, visitor_id, crm_id)
    now = int(time.time() * 1000)
    hashes = [(id_hash(site, "visitor", v), "visitor") for v in visitors]
    hashes += [(id_hash(site, "crm", c), "crm") for c in crms]
    at = dt.datetime.fromtimestamp(now / 1000, dt.UTC)
    warehouse.insert(
        client,
        f"{db}.erased",
        [[h, kind, at] for h, kind in hashes],
        ["id_hash", "kind", "erased_at"],
    )
    (erased or erased_set(client, db)).add([h for h, _ in hashes], now)
    deleted: dict[str, int] = {}
    for start in range(0, max(len(visitors), len(crms), 1), CHUNK):
        vs, cs = visitors[start : start + CHUNK], crms[start : start + CHUNK]
        params = _params(site, vs, cs)
        for table, engine, columns in _tables(client, db):
            conds = _conditions(columns, len(vs), len(cs))
            if not conds or "site" not in columns:
                continue
            where = f"site = %(site)s AND ({' OR '.join(conds)})"
            final = " FINAL" if "Replacing" in engine else ""
            live = _rows(
                client,
                f"SELECT count() FROM {db}.{table}{final} WHERE {where}",
                params,
                "erase:count",
            )
            deleted[table] = deleted.get(table, 0) + int(live[0][0])
            stored = _rows(
                client, f"SELECT count() FROM {db}.{table} WHERE {where}", params, "erase:count"
            )
            if stored[0][0]:  # also tombstones and older versions: they carry the ids too
                with warehouse.CHDB_LOCK:
                    client.command(
                        f"ALTER TABLE {db}.{table} DELETE WHERE {where}",
                        parameters=params,
                        settings={"mutations_sync": 2},
                    )
    _audit_erase(client, db, site, actor, [h for h, _ in hashes], deleted)
    return Erasure(site, visitors, crms, now, dict(sorted(deleted.items())))


def _audit_erase(
    client: Client, db: str, site: str, actor: str, hashes: list[str], deleted: dict[str, int]
) -> None:
    """The erasure itself is audited without the ids: only their hashes and the counts."""
    import uuid

    now = dt.datetime.now(dt.UTC)
    warehouse.insert(
        client,
        f"{db}.identity_audit",
        [
            [
                uuid.uuid4().hex,
                now,
                site,
                actor[:200],
                "erase",
                "",
                "",
                "",
                "",
                "{}",
                orjson.dumps({"id_hashes": hashes, "deleted": deleted}).decode(),
            ]
        ],
        AUDIT_COLUMNS,
    )


# --- export -----------------------------------------------------------------------------


def export(
    client: Client, db: str, site: str, visitor_id: str = "", crm_id: str = ""
) -> dict[str, Any]:
    """Everything stored about one person, table by table (rows as objects)."""
    db, site = warehouse.check_name(db), check_site(site)
    visitors, crms = person(client, db, site, visitor_id, crm_id)
    if len(visitors) + len(crms) > CHUNK:
        raise IdentityError(f"more than {CHUNK} ids for one person: export them in parts")
    params = _params(site, visitors, crms)
    tables: dict[str, list[dict[str, Any]]] = {}
    for table, engine, columns in _tables(client, db):
        conds = _conditions(columns, len(visitors), len(crms))
        if not conds or "site" not in columns:
            continue
        final = " FINAL" if "Replacing" in engine else ""
        result = warehouse.read_query(
            client,
            f"SELECT * FROM {db}.{table}{final} WHERE site = %(site)s AND ({' OR '.join(conds)})",
            parameters=params,
            comment="export",
        )
        tables[table] = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    return {"site": site, "visitor_ids": visitors, "crm_ids": crms, "tables": tables}


def export_json(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
