"""`clickstream sql --format csv|table` writes values as ClickHouse's own CSV does."""

from __future__ import annotations

import csv
import io

import pytest

from clickstream import chtext, warehouse
from clickstream.cli import main

# every column is an array, a map, a number or a tuple inside an array: ClickHouse's CSV of
# this row (FORMAT CSV) is byte for byte what the CLI prints
COMPOSITES = r"""
SELECT
    ['a', 'b''c', 'd\\e', 'tab\there', 'nl\nx', 'quo"te', 'é'] AS strings,
    [1, 2] AS numbers,
    ['only'] AS one,
    [] AS empty,
    [[1, 2], [3]] AS nested,
    [NULL, 'z'] AS nullable,
    [1.5, 2.0, 1e-7, 1.5e-7, 0.000001, 1e20, 1e21, 123456789.125, -0.5, nan, inf, -inf] AS floats,
    [true, false] AS bools,
    [toDecimal64(1.5, 2), toDecimal64(10, 2)] AS decimals,
    [toDate('2026-01-02')] AS dates,
    [toDateTime64('2026-01-02 03:04:05.678', 3, 'UTC')] AS times,
    [toDateTime('2026-01-02 03:04:05', 'UTC')] AS seconds,
    [toUUID('00000000-0000-0000-0000-000000000001')] AS uuids,
    [toIPv4('1.2.3.4')] AS ips,
    [(1, 'a'), (2, 'b')] AS pairs,
    [([1], 'q')] AS deep,
    map('k', 1, 'j', 2) AS counts,
    map('a', ['x', 'y']) AS lists,
    7 AS n,
    2.0 AS f
"""

# strings and dates at the top level: ClickHouse quotes every one ("x"), the CLI only when
# needed; a CSV reader reads the same values from both
SCALARS = r"""
SELECT 'plain' AS s, 'a,b' AS comma, 'say "hi"' AS quote, toDate('2026-01-02') AS d,
    toDateTime('2026-01-02 03:04:05', 'UTC') AS t, toDecimal64(1.5, 3) AS dec, true AS b,
    ['x'] AS arr
"""


@pytest.fixture
def dsn(ch) -> str:  # type: ignore[no-untyped-def]
    """The DSN of the session's chDB client (one engine per process)."""
    return next(d for d, client in warehouse._CLIENTS.items() if client is ch)


def clickhouse_csv(ch, sql: str) -> str:  # type: ignore[no-untyped-def]
    return bytes(ch.raw_query(sql.strip() + " FORMAT CSV")).decode()


def cli_csv(dsn: str, sql: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["sql", sql, "--clickhouse", dsn, "--format", "csv"]) == 0
    return capsys.readouterr().out


def test_csv_writes_arrays_tuples_and_maps_as_clickhouse_does(
    ch, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    header, row = cli_csv(dsn, COMPOSITES, capsys).split("\n", 1)
    assert header.startswith("strings,numbers,one,empty,nested,")
    assert row == clickhouse_csv(ch, COMPOSITES)
    assert row.startswith(
        "\"['a','b\\'c','d\\\\e','tab\\there','nl\\nx','quo\"\"te','é']\",\"[1,2]\","
    )


def test_csv_of_scalars_reads_back_as_clickhouse_csv(
    ch, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    ours = list(csv.reader(io.StringIO(cli_csv(dsn, SCALARS, capsys))))
    theirs = list(csv.reader(io.StringIO(clickhouse_csv(ch, SCALARS))))
    assert ours[1:] == theirs
    assert ours[1][-1] == "['x']"


def test_table_shows_arrays_as_clickhouse_does(
    dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "SELECT ['a', 'b'] AS tags, (1, 'x') AS pair", "--clickhouse", dsn]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["tags", "pair"]
    assert lines[2].split() == ["['a','b']", "(1,'x')"]


def test_arrays_from_the_json_api_are_written_the_same() -> None:
    """`sql --url` gets rows through JSON: lists, dicts, numbers and strings."""
    assert chtext.csv_line([["a", "b"], [1, 2.0], {"k": [None]}, "x"]) == (
        "\"['a','b']\",\"[1,2]\",\"{'k':[NULL]}\",x\n"
    )
