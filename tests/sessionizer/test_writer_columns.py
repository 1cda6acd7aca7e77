"""The DDL is the authority: the writer's column lists must match DESCRIBE TABLE."""

from __future__ import annotations

from clickstream import warehouse
from sessionizer.writer import HIT_COLUMNS, IDENTITY_COLUMNS, SESSION_COLUMNS


def test_writer_columns_match_tables(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    assert warehouse.table_columns(ch, database, "hits") == HIT_COLUMNS
    assert warehouse.table_columns(ch, database, "sessions") == SESSION_COLUMNS
    assert warehouse.table_columns(ch, database, "identities") == IDENTITY_COLUMNS


def test_migrate_is_idempotent(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    assert warehouse.migrate(ch, database) == []
