from __future__ import annotations

import pytest

from clickstream.sqlguard import SQLRefused, check_read_only


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select count() from clickstream.hits FINAL;",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "SELECT ';' AS semi, 'DROP TABLE x' AS text -- comment; DROP",
        "DESCRIBE TABLE clickstream.sessions",
        "SHOW TABLES FROM clickstream",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "SELECT format('{} {}', 'a', 'b') AS format",
        "SELECT * FROM format(CSV, '1,2')",
        "SELECT 'INSERT INTO x' AS `insert`",
    ],
)
def test_reads_pass(sql: str) -> None:
    assert check_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("INSERT INTO clickstream.hits VALUES (1)", "not INSERT"),
        ("ALTER TABLE clickstream.hits DELETE WHERE 1", "not ALTER"),
        ("DROP TABLE clickstream.hits", "not DROP"),
        ("SYSTEM SHUTDOWN", "not SYSTEM"),
        ("SELECT 1; DROP TABLE clickstream.hits", "only one statement"),
        ("SELECT 1;;", "only one statement"),
        ("SELECT * FROM file('/etc/passwd')", "table function file()"),
        ("SELECT * FROM url('http://10.0.0.1/', CSV)", "table function url()"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "OUTFILE"),
        ("WITH (SELECT 1) AS x INSERT INTO clickstream.hits (site) VALUES ('x')", "not INSERT"),
        ("WITH 1 AS x INSERT /* c */ INTO clickstream.hits SELECT * FROM t", "not INSERT"),
        ("SELECT 1 FORMAT Native", "FORMAT clause is not allowed (FORMAT Native)"),
        ("SELECT 1 FORMAT JSON SETTINGS max_threads = 1;", "FORMAT clause"),
        ("", "empty statement"),
        ("SELECT 'unterminated", "unterminated quote"),
        ("SELECT " + "1," * 20000 + "1", "longer than"),
    ],
)
def test_writes_and_tricks_are_refused(sql: str, needle: str) -> None:
    with pytest.raises(SQLRefused) as info:
        check_read_only(sql)
    assert needle in str(info.value)


def test_read_path_refuses_writes_and_keeps_the_engine_writable(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    """On chDB a write sent with readonly=1 would leave the session read-only for good."""
    from clickstream import warehouse

    for stmt in (
        f"DROP TABLE {database}.hits",
        f"INSERT INTO {database}.identities (site) VALUES ('x')",
        f"/* hi */ ALTER TABLE {database}.hits DELETE WHERE 1",
        "SYSTEM FLUSH LOGS",
        # A leading WITH looks like a read, but clickhouse-connect sends an insert's
        # settings with SET: readonly=1 stuck on the shared chDB session for good.
        f"WITH (SELECT 1) AS x INSERT INTO {database}.identities (site) VALUES ('x')",
        f"WITH 1 AS x INSERT INTO {database}.identities SELECT * FROM {database}.identities",
    ):
        with pytest.raises(warehouse.WarehouseError, match="only read statements"):
            warehouse.read_query(ch, stmt)
    assert warehouse.read_query(ch, f"-- comment\nSELECT count() FROM {database}.hits").rows == [
        [0]
    ]
    assert warehouse.read_query(ch, "(SELECT 1) UNION ALL (SELECT 2)").rows == [[1], [2]]
    ch.command(f"CREATE TABLE {database}.still_writable (a Int8) ENGINE = Memory")
    ch.command(f"DROP TABLE {database}.still_writable")


def test_an_empty_result_keeps_its_column_names(ch, database: str) -> None:  # type: ignore[no-untyped-def]
    """chDB sends no block for zero rows: `clickstream sql` printed two blank lines and
    /api/sql answered {"columns": [], "rows": []}."""
    from clickstream import warehouse

    for sql in (
        f"SELECT site, count() AS n FROM {database}.hits WHERE site = 'none' GROUP BY site",
        f"WITH 1 AS one SELECT one, site FROM {database}.hits WHERE 0 -- trailing comment",
        f"(SELECT site AS a, 2 AS b FROM {database}.sessions WHERE 0);",
    ):
        result = warehouse.read_query(ch, sql.rstrip(";"))
        assert result.rows == [] and len(result.columns) == 2, (sql, result.columns)
    assert warehouse.read_query(ch, "SELECT 1 AS x WHERE 0").columns == ["x"]
