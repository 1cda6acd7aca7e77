"""`clickstream resessionize` against real chDB: new rules, same hits, old ids deleted."""

from __future__ import annotations

from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import cli, warehouse
from tests.sessionizer.factory import T0
from tests.sessionizer.test_loop_chdb import feed, h, process

DAY = "2026-01-05"  # T0's day


def rows(client: Client, db: str) -> list[list[object]]:
    return warehouse.read_query(
        client,
        f"SELECT visitor_id, session_number, paths FROM {db}.sessions FINAL "
        "ORDER BY visitor_id, start_ts",
    ).rows


async def written(client: Client, db: str) -> None:
    # yesterday's session, then today: /a /b (20 min apart) /c; another visitor
    await feed(process(client, db), h(-86400, "/y"), close=True)
    await feed(
        process(client, db),
        h(0, "/a"),
        h(20 * 60, "/b"),
        h(21 * 60, "/c"),
        h(0, "/x", vid="vis00002"),
        close=True,
    )


def run_cli(chdb_path: Path, db: str, *args: str) -> int:
    return cli.main(
        ["resessionize", "--clickhouse", f"chdb://{chdb_path}", "--database", db, *args]
    )


async def test_shorter_timeout_splits_and_deletes_nothing_it_keeps(
    client: Client, db: str, chdb_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await written(client, db)
    assert rows(client, db) == [
        ["vis00001", 1, ["/y"]],
        ["vis00001", 2, ["/a", "/b", "/c"]],
        ["vis00002", 1, ["/x"]],
    ]
    hits_before = warehouse.read_query(client, f"SELECT count() FROM {db}.hits FINAL").rows
    code = run_cli(
        chdb_path, db, "--site", "s1", "--from", DAY, "--to", DAY, "--session-timeout-min", "10"
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == (
        f"rebuilt site s1 {DAY}..{DAY}: 4 hits, sessions 2 -> 3 (0 deleted, 0 cut by caps)"
    )
    # numbering goes on from yesterday's session; the first id is kept (same first hit)
    assert rows(client, db) == [
        ["vis00001", 1, ["/y"]],
        ["vis00001", 2, ["/a"]],
        ["vis00001", 3, ["/b", "/c"]],
        ["vis00002", 1, ["/x"]],
    ]
    assert warehouse.read_query(client, f"SELECT count() FROM {db}.hits FINAL").rows == hits_before
    # and back: the longer timeout merges them again, deleting the id of "/b /c"
    assert run_cli(chdb_path, db, "--site", "s1", "--from", DAY, "--to", DAY) == 0
    assert "sessions 3 -> 2 (1 deleted" in capsys.readouterr().out
    assert rows(client, db)[1] == ["vis00001", 2, ["/a", "/b", "/c"]]


async def test_dry_run_writes_nothing(
    client: Client, db: str, chdb_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await written(client, db)
    before = rows(client, db)
    assert (
        run_cli(
            chdb_path,
            db,
            "--site",
            "s1",
            "--from",
            DAY,
            "--to",
            DAY,
            "--dry-run",
            "--max-session-hits",
            "10",
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("would rebuild site s1")
    assert rows(client, db) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--site", "s1", "--from", "2026-13-01", "--to", DAY],
            "--from '2026-13-01' is not a date YYYY-MM-DD",
        ),
        (
            ["--site", "s1", "--from", DAY, "--to", "tomorrow"],
            "--to 'tomorrow' is not a date YYYY-MM-DD",
        ),
        (
            ["--site", "s1", "--from", DAY, "--to", "2026-01-04"],
            "--to 2026-01-04 is before --from 2026-01-05",
        ),
        (["--site", "s1", "--from", "2020-01-01", "--to", DAY], "at most 366 days at a time"),
        (
            ["--site", "bad site!", "--from", DAY, "--to", DAY],
            "--site 'bad site!' is not a site id",
        ),
        (
            ["--site", "s1", "--from", DAY, "--to", DAY, "--time-zone", "Mars/Olympus"],
            "'Mars/Olympus' is not an IANA time zone",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(
    args: list[str], message: str, db: str, chdb_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(chdb_path, db, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("clickstream: error: ") and message in err and err.count("\n") == 1


def test_t0_is_the_day_used() -> None:
    import datetime as dt

    assert dt.datetime.fromtimestamp(T0 / 1000, dt.UTC).date().isoformat() == DAY
