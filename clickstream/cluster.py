"""ON CLUSTER DDL for a ClickHouse cluster, generated from the same migration files.

Every ``CREATE TABLE db.t … ENGINE = XMergeTree(args)`` migration becomes two tables:

* ``db.t_local`` on every node: ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/db/t_local',
  '{replica}', args)``, the same columns, ORDER BY, PARTITION BY and settings;
* ``db.t`` on every node: ``Distributed(cluster, db, t_local, <sharding key>)``, so readers and
  writers keep using the table name they know.

Rows are sharded by ``cityHash64(visitor_id)``: one visitor's hits, sessions and identity
links live on one shard, so per-visitor reports (paths, funnels by visitor, returning
visitors) need no cross-shard joins. ``ALTER TABLE`` migrations are applied to the local
table, and column changes to the Distributed table too. Anything else stops with an error
naming the migration, so a new kind of migration is never mistranslated silently.

``{shard}`` and ``{replica}`` are the server's own macros (``<macros>`` in its config).
"""

from __future__ import annotations

import re
from typing import Any

from clickstream.warehouse import check_name, migrations, render

SHARDING_KEY = "cityHash64(visitor_id)"
# Table -> sharding expression; a table missing here is sharded by SHARDING_KEY.
SHARDING_KEYS: dict[str, str] = {
    "hits": SHARDING_KEY,
    "sessions": SHARDING_KEY,
    "identities": SHARDING_KEY,
    "crm_merges": "cityHash64(from_crm)",  # small tables, always read whole
    "erased": "cityHash64(id_hash)",
}
LOCAL_SUFFIX = "_local"

_CREATE_DB = re.compile(r"^CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*$", re.I)
_CREATE_TABLE = re.compile(
    r"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)\s*(.*)$", re.I | re.S
)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(\w*MergeTree)\b", re.I)
_CREATE_VIEW = re.compile(
    r"^CREATE\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)\s+(AS\s.*)$", re.I | re.S
)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(\w+)\.(\w+)\s+(.*)$", re.I | re.S)
_COLUMN_ALTER = re.compile(r"^\s*(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)


class ClusterDDLError(ValueError):
    """A migration that cannot be turned into cluster DDL; the message names it."""


def cluster_ddl(database: str, cluster: str) -> list[str]:
    """All migrations as ON CLUSTER statements, in order, for ``database`` on ``cluster``."""
    db, cl = check_name(database), check_name(cluster)
    out = [f"CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER {cl}", _migrations_table(db, cl)]
    for mig in migrations():
        out.extend(migration_ddl(render(mig.sql, db), db, cl, f"{mig.number:04d}_{mig.name}"))
    return out


def migration_ddl(sql: str, database: str, cluster: str, name: str = "migration") -> list[str]:
    """One migration's statement as its cluster statements."""
    stmt = _strip_comments(sql)
    if _CREATE_DB.match(stmt):
        return []  # the database is created first, ON CLUSTER, by cluster_ddl
    if m := _CREATE_TABLE.match(stmt):
        if m.group(2) != database:
            raise ClusterDDLError(f"{name}: table {m.group(2)}.{m.group(3)} is outside {database}")
        return _create_table(m.group(3), m.group(4), database, cluster, name)
    if m := _CREATE_VIEW.match(stmt):  # over the Distributed tables, on every node
        if m.group(2) != database:
            raise ClusterDDLError(f"{name}: view {m.group(2)}.{m.group(3)} is outside {database}")
        return [
            f"CREATE VIEW IF NOT EXISTS {database}.{m.group(3)} ON CLUSTER {cluster} {m.group(4)}"
        ]
    if m := _ALTER.match(stmt):
        if m.group(1) != database:
            raise ClusterDDLError(f"{name}: table {m.group(1)}.{m.group(2)} is outside {database}")
        table, rest = m.group(2), m.group(3)
        local = f"ALTER TABLE {database}.{table}{LOCAL_SUFFIX} ON CLUSTER {cluster} {rest}"
        if _COLUMN_ALTER.match(rest):
            return [local, f"ALTER TABLE {database}.{table} ON CLUSTER {cluster} {rest}"]
        return [local]
    raise ClusterDDLError(
        f"{name}: no cluster translation for {stmt.split(None, 3)[:3]}; extend clickstream/cluster.py"
    )


def _create_table(table: str, body: str, db: str, cluster: str, name: str) -> list[str]:
    engine = _ENGINE.search(body)
    if engine is None:
        raise ClusterDDLError(f"{name}: table {table} has no *MergeTree engine")
    kind = engine.group(1)
    if kind.startswith("Replicated"):
        raise ClusterDDLError(f"{name}: table {table} is already replicated")
    args, end = _engine_args(body, engine.end())
    key = SHARDING_KEYS.get(table, SHARDING_KEY)
    if key == SHARDING_KEY and not re.search(r"(?:^|[(,])\s*visitor_id\s", body, re.M):
        raise ClusterDDLError(f"{name}: table {table} has no visitor_id column to shard by")
    local = f"{table}{LOCAL_SUFFIX}"
    path = f"'/clickhouse/tables/{{shard}}/{db}/{local}', '{{replica}}'"
    replicated = f"ENGINE = Replicated{kind}({path}{', ' + args if args else ''})"
    columns = body[: engine.start()].rstrip()
    tail = body[end:]
    return [
        f"CREATE TABLE IF NOT EXISTS {db}.{local} ON CLUSTER {cluster}\n{columns}\n{replicated}{tail}",
        f"CREATE TABLE IF NOT EXISTS {db}.{table} ON CLUSTER {cluster} AS {db}.{local}\n"
        f"ENGINE = Distributed({cluster}, {db}, {local}, {key})",
    ]


def _engine_args(body: str, pos: int) -> tuple[str, int]:
    """The text inside the engine's parentheses (balanced) and where the clause ends."""
    i = pos
    while i < len(body) and body[i] in " \t":
        i += 1
    if i >= len(body) or body[i] != "(":
        return "", pos
    depth = 0
    for j in range(i, len(body)):
        if body[j] == "(":
            depth += 1
        elif body[j] == ")":
            depth -= 1
            if depth == 0:
                return body[i + 1 : j].strip(), j + 1
    raise ClusterDDLError("unbalanced parentheses in ENGINE clause")


def _strip_comments(sql: str) -> str:
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";").strip()


def _migrations_table(db: str, cluster: str) -> str:
    # One replica set across the whole cluster (no {shard}): every node sees every row.
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations ON CLUSTER {cluster}\n"
        "(number UInt32, name String, applied_at DateTime DEFAULT now())\n"
        f"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{db}/schema_migrations', "
        "'{replica}')\nORDER BY number"
    )


def print_or_apply(client: Any | None, database: str, cluster: str, apply: bool) -> list[str]:
    """``clickstream migrate --cluster NAME``: the statements, run on ``client`` if ``apply``.

    Applying is idempotent: migrations already recorded in ``schema_migrations`` are skipped.
    Returns the statements printed (``apply=False``) or run (``apply=True``).
    """
    db, cl = check_name(database), check_name(cluster)
    if not apply:
        return cluster_ddl(db, cl)
    if client is None:
        raise ClusterDDLError(
            "applying cluster DDL needs a ClickHouse server (--clickhouse http://…)"
        )
    ran = [f"CREATE DATABASE IF NOT EXISTS {db} ON CLUSTER {cl}", _migrations_table(db, cl)]
    for stmt in ran:
        client.command(stmt)
    done = {r[0] for r in client.query(f"SELECT number FROM {db}.schema_migrations").result_rows}
    for mig in migrations():
        if mig.number in done:
            continue
        for stmt in migration_ddl(render(mig.sql, db), db, cl, f"{mig.number:04d}_{mig.name}"):
            client.command(stmt)
            ran.append(stmt)
        client.insert(
            f"{db}.schema_migrations", [[mig.number, mig.name]], column_names=["number", "name"]
        )
    return ran
