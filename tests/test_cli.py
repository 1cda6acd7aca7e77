"""The CLI as users run it: every command documented, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clickstream.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def commands() -> list[str]:
    sub = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    return sorted(sub.choices)


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [c for c in commands() if f"clickstream {c}" not in readme]
    assert missing == [], f"README's CLI section lacks: {missing}"
    assert {
        "serve",
        "collector",
        "sessionizer",
        "dashboard",
        "migrate",
        "report",
        "import-log",
        "sql",
        "identify",
        "erase",
        "snippet",
        "demo",
        "resessionize",
        "export",
    } <= set(commands())


def test_migrate_cluster_prints_on_cluster_ddl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--cluster", "prod"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE IF NOT EXISTS clickstream.hits_local ON CLUSTER prod" in out
    assert "ENGINE = Distributed(prod, clickstream, hits_local" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["migrate", "--cluster", "bad name"], "clickstream: error: bad identifier 'bad name'"),
        (["migrate", "--apply"], "clickstream: error: --apply goes with --cluster NAME"),
        (
            ["migrate", "--cluster", "prod", "--apply"],
            "clickstream: error: --apply runs the ON CLUSTER DDL on a server: give --clickhouse DSN",
        ),
        (["demo", "--sessions", "0"], "clickstream: error: --sessions must be 1..1000000"),
        (
            ["demo", "--site", "my shop"],
            "clickstream: error: --site 'my shop': 1-64 characters of letters, digits, '.', '_', '-'",
        ),
        (
            ["sql", "DROP TABLE clickstream.hits"],
            "clickstream: error: only read statements are allowed",
        ),
        (
            ["serve", "--sesion-timeout-min", "5"],
            "clickstream serve: error: unrecognized argument --sesion-timeout-min; "
            "did you mean --session-timeout-min? (`clickstream serve --help` lists the options)",
        ),
        (
            ["import-log", "x.log", "--site", "s", "--formt", "common"],
            "clickstream import-log: error: unrecognized argument --formt; did you mean --format?",
        ),
        (
            ["report", "overview", "--site", "s", "--format", "xml"],
            "clickstream report: error: argument --format: invalid choice: 'xml'",
        ),
        (
            ["import-log", "x.log"],
            "clickstream import-log: error: the following arguments are required: --site",
        ),
        (
            ["sql", "SELECT 1", "--url", "127.0.0.1:8000"],
            "clickstream sql: error: --url '127.0.0.1:8000': an http:// or https:// URL expected",
        ),
        (
            ["demo", "--collector", "localhost"],
            "clickstream demo: error: --collector 'localhost': an http:// or https:// URL expected",
        ),
        (
            ["serve", "--data", "/proc/clickstream-data"],
            "clickstream: error: setting 'data': cannot create '/proc/clickstream-data': ",
        ),
        (
            ["serve", "--clickhouse", "foo://x"],
            "clickstream: error: setting 'clickhouse' (flag --clickhouse): 'foo://x' is not",
        ),
    ],
)
def test_errors_are_one_line(argv: list[str], message: str) -> None:
    """Usage errors too: argparse printed the usage block of the 60 settings flags first."""
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["demo", "--collector", "http://127.0.0.1:1", "--sessions", "1"],
            "clickstream: error: demo traffic to http://127.0.0.1:1 failed: ",
        ),
        (
            ["identify", "--site", "s", "--visitor", "abcdefgh12", "--crm", "c"],
            "clickstream: error: ClickHouse at chdb://",
        ),
        (["erase", "--site", "s", "--crm", "c"], "clickstream: error: ClickHouse at chdb://"),
    ],
)
def test_failures_past_the_arguments_are_one_line_too(
    argv: list[str], message: str, tmp_path: Path
) -> None:
    # a data dir with no serve and no schema: identify/erase open its (empty) chDB
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", *argv, "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    lines = [
        ln for ln in proc.stderr.splitlines() if not ln.startswith("Code: ")
    ]  # chDB's own print
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr


def test_migrate_applies_the_retention_settings(tmp_path: Path) -> None:
    """README: retention_days is a ClickHouse TTL "applied by migrate" (serve does it at start)."""
    dsn = f"chdb://{tmp_path / 'chdb'}"

    def migrate(*flags: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "clickstream.cli", "migrate", "--clickhouse", dsn, *flags],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = migrate("--retention-days", "30", "--retention-tables", "sessions=400")
    assert (
        "retention: clickstream.hits keeps 30 days\nretention: clickstream.sessions keeps 400 days\n"
        in out
    )
    assert (
        migrate("--retention-days", "30", "--retention-tables", "sessions=400")
        == "schema is up to date\n"
    )
    assert "retention: clickstream.hits keeps rows forever (TTL removed)" in migrate()


def test_a_closed_pipe_is_not_an_error() -> None:
    """`clickstream migrate --cluster prod | head -1` printed `error: [Errno 32] Broken pipe`."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has left before the first line
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "clickstream.cli", "migrate", "--cluster", "prod"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_migrate_names_the_serve_that_owns_the_chdb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It opened the locked chDB files and answered 'Unable to open the chdb engine'."""
    import json
    import os

    from clickstream import running

    (tmp_path / running.NAME).write_text(
        json.dumps({"url": "http://127.0.0.1:1", "kafka": "127.0.0.1:2", "pid": os.getpid()})
    )
    assert main(["migrate", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"clickstream: error: the `clickstream serve` running with --data {tmp_path} owns its "
        "chDB and migrated it at start; stop it first, or give --clickhouse DSN\n"
    )
    assert not (tmp_path / "chdb").exists()


def test_an_unreachable_server_is_one_line() -> None:
    """clickhouse-connect's own log line ("Unexpected Http Driver Exception") came first."""
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "migrate", "--clickhouse", "http://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "clickstream: error: cannot reach ClickHouse at http://127.0.0.1:1"
    )
    assert proc.stderr.count("\n") == 1, proc.stderr
