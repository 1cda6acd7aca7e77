"""ClickHouse access: one clickhouse-connect client for server and chDB DSNs.

The write side (sessionizer, ``migrate``) uses :func:`connect`; the read side
(reports, ``/api/sql``) uses :func:`read_query`, which always runs with
``readonly=1`` and a ``log_comment`` naming who asked.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

_CLIENTS: dict[str, Client] = {}
_LOCK = threading.Lock()
# chDB runs the engine in-process and is not safe for concurrent queries from threads.
CHDB_LOCK = threading.RLock()

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class WarehouseError(RuntimeError):
    """ClickHouse refused or could not be reached; the message says which."""


_VERSION_LOCK = threading.Lock()
_last_version = 0


def next_version() -> int:
    """The ``version`` of a row of a ``ReplacingMergeTree(version, …)`` table: microseconds
    since the epoch, strictly increasing within the process.  Every writer of those tables
    (the sessionizer, the identity API) takes it from here, so the later write wins under
    ``FINAL`` whichever process made it."""
    global _last_version
    with _VERSION_LOCK:
        _last_version = max(_last_version + 1, time.time_ns() // 1000)
        return _last_version


def check_dsn(dsn: str) -> str:
    scheme = urlsplit(dsn).scheme
    if scheme == "chdb":
        path = dsn[len("chdb://") :]
        if not path.startswith("/"):
            raise WarehouseError(f"chDB DSN needs an absolute path: chdb:///abs/path, got {dsn!r}")
    elif scheme not in ("http", "https", "clickhouse"):
        raise WarehouseError(
            f"unsupported ClickHouse DSN {dsn!r} (http://host:8123 or chdb:///path)"
        )
    return dsn


def connect(dsn: str, max_memory: str = "") -> Client:
    """The process-wide client for a DSN (chDB allows one engine per process)."""
    check_dsn(dsn)
    with _LOCK:
        client = _CLIENTS.get(dsn)
        if client is None:
            try:
                if dsn.startswith("chdb://"):
                    client = clickhouse_connect.get_client(dsn=dsn)
                    if max_memory:
                        limit = _bytes(max_memory)
                        client.command(f"SET max_memory_usage = {limit}")
                        # past half the cap a GROUP BY or ORDER BY spills to disk (slower)
                        # instead of failing the report (a funnel over 100M hits wants ~3 GB)
                        client.command(f"SET max_bytes_before_external_group_by = {limit // 2}")
                        client.command(f"SET max_bytes_before_external_sort = {limit // 2}")
                else:
                    client = clickhouse_connect.get_client(dsn=dsn, autogenerate_session_id=False)
            except Exception as exc:  # connection errors come in many types
                raise WarehouseError(f"cannot reach ClickHouse at {_redact(dsn)}: {exc}") from exc
            _CLIENTS[dsn] = client
        return client


def is_chdb(client: Client) -> bool:
    return type(client).__name__ == "ChdbClient"


def _bytes(size: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", size, re.I)
    if not m:
        raise WarehouseError(f"bad memory size {size!r} (e.g. 4G)")
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")


def _redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        return dsn.replace(parts.password, "***")
    return dsn


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise WarehouseError(f"bad identifier {name!r}")
    return name


# --- migrations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    out = []
    for item in resources.files("clickstream.migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", item.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), item.read_text()))
    return sorted(out, key=lambda m: m.number)


def render(sql: str, database: str) -> str:
    return sql.replace("{db}", check_name(database))


def migrate(client: Client, database: str = "clickstream") -> list[str]:
    """Apply the migrations not yet applied; idempotent. Returns the names applied."""
    db = check_name(database)
    applied_now = []
    with CHDB_LOCK:
        client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        client.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(number UInt32, name String, applied_at DateTime DEFAULT now()) "
            "ENGINE = ReplacingMergeTree ORDER BY number"
        )
        done = {
            row[0] for row in client.query(f"SELECT number FROM {db}.schema_migrations").result_rows
        }
        for mig in migrations():
            if mig.number in done:
                continue
            client.command(render(mig.sql, db))
            client.insert(
                f"{db}.schema_migrations", [[mig.number, mig.name]], column_names=["number", "name"]
            )
            applied_now.append(f"{mig.number:04d}_{mig.name}")
    return applied_now


def table_columns(client: Client, database: str, table: str) -> list[str]:
    """The columns a writer inserts: MATERIALIZED and ALIAS columns are computed by ClickHouse."""
    with CHDB_LOCK:
        rows = client.query(
            f"DESCRIBE TABLE {check_name(database)}.{check_name(table)}"
        ).result_rows
    return [r[0] for r in rows if r[2] not in ("MATERIALIZED", "ALIAS")]


# --- writes and reads ----------------------------------------------------------------


def insert(client: Client, table: str, rows: list[list[Any]], columns: list[str]) -> None:
    if not rows:
        return
    with CHDB_LOCK:
        client.insert(table, rows, column_names=columns)


@dataclass
class ReadResult:
    columns: list[str]
    rows: list[list[Any]]


def read_query(
    client: Client,
    sql: str,
    parameters: dict[str, Any] | None = None,
    comment: str = "clickstream",
    settings: dict[str, Any] | None = None,
) -> ReadResult:
    """Run a read-only query: ``readonly=1`` is enforced by ClickHouse itself.

    Anything but a read is refused before it is sent: on chDB a refused write would
    leave the shared session in readonly mode (its settings are applied with SET).
    """
    from clickstream.sqlguard import is_read

    if not is_read(sql):
        raise WarehouseError("only read statements may run on the read-only path")
    query_settings = {"readonly": 1, "log_comment": comment[:200]}
    query_settings.update(settings or {})
    with CHDB_LOCK:
        result = client.query(sql, parameters=parameters, settings=query_settings)
        columns = list(result.column_names)
        rows = [list(r) for r in result.result_rows]
        if not columns and not rows and _words_start(sql) in ("SELECT", "WITH", "("):
            # No rows came with no column names (chDB sends no Native block for an empty
            # result); an analyst still wants the header: ask for the columns alone.
            probe = f"SELECT * FROM (\n{sql.strip().rstrip(';')}\n) LIMIT 0"
            try:
                probed = client.query(probe, parameters=parameters, settings=query_settings)
                columns = list(probed.column_names)
            except Exception:  # the statement ran; a header is not worth failing it
                columns = []
    return ReadResult(columns, rows)


def _words_start(sql: str) -> str:
    """The first keyword (or an opening parenthesis) past comments, upper-cased."""
    text = re.sub(r"(--|#)[^\n]*|/\*.*?\*/", " ", sql, flags=re.S).lstrip()
    match = re.match(r"[A-Za-z]+|\(", text)
    return match.group().upper() if match else ""
