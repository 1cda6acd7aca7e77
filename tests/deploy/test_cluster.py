"""Cluster DDL: snapshot, syntax checked by ClickHouse's parser, local tables equal the plain ones.

Regenerate the snapshot after a schema change with
``CLICKSTREAM_UPDATE_SNAPSHOTS=1 pytest tests/deploy/test_cluster.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from clickstream.cluster import (
    ClusterDDLError,
    cluster_ddl,
    migration_ddl,
    print_or_apply,
)
from clickstream.warehouse import migrations

SNAPSHOT = Path(__file__).parent / "snapshots" / "cluster_clickstream_analytics.sql"
TABLES = ("hits", "sessions", "identities")
ALL_TABLES = (*TABLES, "identity_audit", "crm_merges", "erased")


def _joined(statements: list[str]) -> str:
    return "".join(f"{s};\n\n" for s in statements)


def test_cluster_ddl_matches_snapshot() -> None:
    text = _joined(cluster_ddl("clickstream", "analytics"))
    if os.environ.get("CLICKSTREAM_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()


def test_cluster_ddl_shape() -> None:
    ddl = cluster_ddl("cs", "c1")
    assert ddl[0] == "CREATE DATABASE IF NOT EXISTS cs ON CLUSTER c1"
    assert all(" ON CLUSTER c1" in s for s in ddl)
    for table in TABLES:
        local = next(s for s in ddl if f"cs.{table}_local ON CLUSTER" in s)
        assert (
            f"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/cs/{table}_local', "
            "'{replica}', version, is_deleted)" in local
        )
        dist = next(s for s in ddl if s.startswith(f"CREATE TABLE IF NOT EXISTS cs.{table} "))
        assert dist.endswith(f"ENGINE = Distributed(c1, cs, {table}_local, cityHash64(visitor_id))")
        assert f"AS cs.{table}_local" in dist


def test_cluster_ddl_parses_in_clickhouse(ch: Client) -> None:
    for stmt in cluster_ddl("clickstream", "analytics"):
        ast = ch.query(f"EXPLAIN AST {stmt}").result_rows
        assert ast[0][0].startswith(("CreateQuery", "AlterQuery"))


def _non_cluster(stmt: str) -> str:
    """The local-table DDL as a single server runs it: no ON CLUSTER, plain *MergeTree."""
    stmt = stmt.replace(" ON CLUSTER analytics", "")
    return re.sub(r"Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?", r"\1(", stmt)


def _describe(client: Client, db: str, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(f"DESCRIBE TABLE {db}.{table}").result_rows]


def _table_meta(client: Client, db: str, table: str) -> tuple[str, str, str, str]:
    row = client.query(
        "SELECT engine, sorting_key, partition_key, primary_key FROM system.tables "
        "WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": db, "t": table},
    ).result_rows[0]
    return (row[0], row[1], row[2], row[3])


def test_local_tables_equal_plain_migrations(ch: Client) -> None:
    warehouse.migrate(ch, database="t_deploy_plain")
    ch.command("CREATE DATABASE IF NOT EXISTS t_deploy_repl")
    locals_ = [s for s in cluster_ddl("t_deploy_repl", "analytics") if "_local ON CLUSTER" in s]
    assert len([s for s in locals_ if s.startswith("CREATE")]) == len(ALL_TABLES)
    for stmt in locals_:
        ch.command(_non_cluster(stmt))
    for table in ALL_TABLES:
        plain = _describe(ch, "t_deploy_plain", table)
        local = _describe(ch, "t_deploy_repl", f"{table}_local")
        assert [r[0] for r in local] == [r[0] for r in plain]
        assert local == plain
        assert _table_meta(ch, "t_deploy_repl", f"{table}_local") == _table_meta(
            ch, "t_deploy_plain", table
        )
    assert _table_meta(ch, "t_deploy_plain", "sessions") == (
        "ReplacingMergeTree",
        "site, toDate(start_ts), session_id",
        "toYYYYMM(start_ts)",
        "site, toDate(start_ts), session_id",
    )


def test_alter_column_goes_to_local_and_distributed() -> None:
    out = migration_ddl(
        "-- add a column\nALTER TABLE cs.hits ADD COLUMN IF NOT EXISTS lang String;\n", "cs", "c1"
    )
    assert out == [
        "ALTER TABLE cs.hits_local ON CLUSTER c1 ADD COLUMN IF NOT EXISTS lang String",
        "ALTER TABLE cs.hits ON CLUSTER c1 ADD COLUMN IF NOT EXISTS lang String",
    ]


def test_alter_other_than_columns_goes_to_local_only() -> None:
    out = migration_ddl("ALTER TABLE cs.hits MODIFY TTL toDate(ts) + INTERVAL 1 YEAR", "cs", "c1")
    assert out == [
        "ALTER TABLE cs.hits_local ON CLUSTER c1 MODIFY TTL toDate(ts) + INTERVAL 1 YEAR"
    ]


def test_engine_without_arguments() -> None:
    out = migration_ddl(
        "CREATE TABLE cs.t (visitor_id String) ENGINE = MergeTree ORDER BY visitor_id", "cs", "c1"
    )
    assert out[0] == (
        "CREATE TABLE IF NOT EXISTS cs.t_local ON CLUSTER c1\n(visitor_id String)\n"
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/cs/t_local', '{replica}') "
        "ORDER BY visitor_id"
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE MATERIALIZED VIEW cs.v TO cs.t AS SELECT 1", "0009_x: no cluster translation"),
        ("CREATE VIEW other.v AS SELECT 1", "0009_x: view other.v is outside cs"),
        (
            "CREATE TABLE cs.t (a String) ENGINE = Memory",
            "0009_x: table t has no *MergeTree engine",
        ),
        (
            "CREATE TABLE cs.t (a String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a",
            "0009_x: table t is already replicated",
        ),
        (
            "CREATE TABLE cs.t (a String) ENGINE = MergeTree ORDER BY a",
            "0009_x: table t has no visitor_id column to shard by",
        ),
        ("CREATE TABLE other.t (visitor_id String) ENGINE = MergeTree ORDER BY a", "outside cs"),
        ("ALTER TABLE other.hits ADD COLUMN a String", "outside cs"),
        ("CREATE TABLE cs.t (visitor_id String) ENGINE = MergeTree((a) ORDER BY a", "unbalanced"),
    ],
)
def test_untranslatable_migrations_are_refused(sql: str, message: str) -> None:
    with pytest.raises(ClusterDDLError, match=re.escape(message)):
        migration_ddl(sql, "cs", "c1", "0009_x")


@pytest.mark.parametrize(("database", "cluster"), [("bad-db", "c1"), ("cs", "c1; DROP"), ("", "c")])
def test_bad_names_are_refused(database: str, cluster: str) -> None:
    with pytest.raises(warehouse.WarehouseError, match="bad identifier"):
        cluster_ddl(database, cluster)


def test_print_returns_the_ddl_without_a_client() -> None:
    assert print_or_apply(None, "clickstream", "analytics", apply=False) == cluster_ddl(
        "clickstream", "analytics"
    )


def test_apply_without_a_client_is_refused() -> None:
    with pytest.raises(ClusterDDLError, match="needs a ClickHouse server"):
        print_or_apply(None, "clickstream", "analytics", apply=True)


class _Recorder:
    """A list sink standing in for the cluster (no ClickHouse cluster exists here)."""

    def __init__(self, done: list[int]) -> None:
        self.done = done
        self.commands: list[str] = []
        self.inserted: list[list[Any]] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str) -> Any:
        assert sql == "SELECT number FROM cs.schema_migrations"
        return type("R", (), {"result_rows": [[n] for n in self.done]})()

    def insert(self, table: str, rows: list[list[Any]], column_names: list[str]) -> None:
        assert (table, column_names) == ("cs.schema_migrations", ["number", "name"])
        self.inserted.extend(rows)


def test_apply_skips_recorded_migrations() -> None:
    rec = _Recorder(done=[m.number for m in migrations() if m.number not in (3, 4)])
    ran = print_or_apply(rec, "cs", "c1", apply=True)
    assert ran == rec.commands
    assert [s.split("\n")[0] for s in ran] == [
        "CREATE DATABASE IF NOT EXISTS cs ON CLUSTER c1",
        "CREATE TABLE IF NOT EXISTS cs.schema_migrations ON CLUSTER c1",
        "CREATE TABLE IF NOT EXISTS cs.sessions_local ON CLUSTER c1",
        "CREATE TABLE IF NOT EXISTS cs.sessions ON CLUSTER c1 AS cs.sessions_local",
        "CREATE TABLE IF NOT EXISTS cs.identities_local ON CLUSTER c1",
        "CREATE TABLE IF NOT EXISTS cs.identities ON CLUSTER c1 AS cs.identities_local",
    ]
    assert rec.inserted == [[3, "create_sessions"], [4, "create_identities"]]


def test_cluster_migrations_table_is_the_one_plain_migrate_reads(ch: Client) -> None:
    """Sessionizers run the plain ``migrate`` at start: on a cluster it must find every
    migration already recorded in the (replicated) ``schema_migrations``, never re-apply one."""
    warehouse.migrate(ch, database="t_deploy_plain2")
    ch.command("CREATE DATABASE IF NOT EXISTS t_deploy_repl2")
    stmt = next(s for s in cluster_ddl("t_deploy_repl2", "analytics") if "schema_migrations" in s)
    ch.command(_non_cluster(stmt))
    assert _describe(ch, "t_deploy_repl2", "schema_migrations") == _describe(
        ch, "t_deploy_plain2", "schema_migrations"
    )
    assert _table_meta(ch, "t_deploy_repl2", "schema_migrations")[:2] == (
        "ReplacingMergeTree",
        "number",
    )


def test_views_are_created_on_every_node_over_the_distributed_tables() -> None:
    views = [s for s in cluster_ddl("cs", "c1") if s.startswith("CREATE VIEW")]
    assert [v.split(" AS", 1)[0] for v in views] == [
        "CREATE VIEW IF NOT EXISTS cs.resolved_identities ON CLUSTER c1",
        "CREATE VIEW IF NOT EXISTS cs.resolved_sessions ON CLUSTER c1",
    ]
    assert all("GLOBAL LEFT JOIN" in v and "_local" not in v for v in views)
