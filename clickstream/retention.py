"""Retention: per-table ClickHouse TTLs from the settings, applied by ``migrate``.

``retention_days`` covers ``hits`` and ``sessions``; ``retention_tables`` overrides
per table (``hits=90,sessions=400,identity_audit=0``).  0 keeps rows forever (the TTL
is removed).  A TTL already equal to the wanted one is left alone, because
``MODIFY TTL`` rewrites the table's parts.
"""

from __future__ import annotations

import logging
import re

from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from clickstream.settings import Settings, SettingsError

TTL_COLUMNS = {
    "hits": "ts",
    "sessions": "start_ts",
    "identities": "last_ts",
    "identity_audit": "ts",
}
DEFAULT_TABLES = ("hits", "sessions")
log = logging.getLogger("clickstream.retention")
_CURRENT = re.compile(r"\bTTL\b.*?toIntervalDay\((\d+)\)")


def wanted(settings: Settings) -> dict[str, int]:
    """Days per table (0 = forever); raises SettingsError naming the bad entry."""
    days = {t: int(settings.retention_days) for t in DEFAULT_TABLES}
    for part in settings.retention_tables.split(","):
        if not part.strip():
            continue
        table, sep, value = part.partition("=")
        table = table.strip()
        if not sep or table not in TTL_COLUMNS or not value.strip().isdigit():
            raise SettingsError(
                f"setting 'retention_tables': {part.strip()!r} is not table=days with a table among "
                f"{', '.join(TTL_COLUMNS)}"
            )
        days[table] = int(value)
        if days[table] > 36500:
            raise SettingsError(
                f"setting 'retention_tables': {table} {days[table]} is outside 0..36500"
            )
    return days


def _table(client: Client, db: str, table: str) -> tuple[str, str]:
    rows = warehouse.read_query(
        client,
        "SELECT engine, create_table_query FROM system.tables WHERE database = %(db)s AND name = %(t)s",
        parameters={"db": db, "t": table},
        comment="retention",
    ).rows
    if not rows:
        raise warehouse.WarehouseError(f"no table {db}.{table}: run migrate first")
    return rows[0][0], rows[0][1]


def current(client: Client, db: str, table: str) -> int:
    """Days of the table's TTL now (0: none)."""
    m = _CURRENT.search(_table(client, db, table)[1])
    return int(m.group(1)) if m else 0


def apply(client: Client, db: str, settings: Settings) -> dict[str, int]:
    """Set each table's TTL; returns the tables changed and their new days."""
    db = warehouse.check_name(db)
    changed = {}
    for table, days in wanted(settings).items():
        engine, ddl = _table(client, db, table)
        if engine == "Distributed":  # a cluster: the TTL belongs on <table>_local ON CLUSTER
            if days:
                log.warning(
                    "retention: %s.%s is Distributed; set the TTL with ALTER TABLE %s.%s_local "
                    "ON CLUSTER <cluster> MODIFY TTL ... (see docs/privacy.md)",
                    db,
                    table,
                    db,
                    table,
                )
            continue
        m = _CURRENT.search(ddl)
        if (int(m.group(1)) if m else 0) == days:
            continue
        sql = (
            f"ALTER TABLE {db}.{table} MODIFY TTL toDateTime({TTL_COLUMNS[table]}) + INTERVAL {days} DAY"
            if days
            else f"ALTER TABLE {db}.{table} REMOVE TTL"
        )
        with warehouse.CHDB_LOCK:
            client.command(sql, settings={"mutations_sync": 2})
        changed[table] = days
    return changed
