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
    assert proc.returncode == 1  # a failure while running, not a usage error (2)
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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


NOWHERE = "http://127.0.0.1:1"  # nothing listens on port 1
DAYS = ["--from", "2026-01-01", "--to", "2026-01-02"]


@pytest.mark.parametrize(
    "argv",
    [
        # ClickHouse unreachable
        ["migrate", "--clickhouse", NOWHERE],
        ["migrate", "--cluster", "prod", "--apply", "--clickhouse", NOWHERE],
        ["sql", "SELECT 1", "--clickhouse", NOWHERE],
        ["report", "overview", "--site", "s", "--clickhouse", NOWHERE],
        [
            "identify",
            "--site",
            "s",
            "--visitor",
            "abcdefgh12",
            "--crm",
            "c",
            "--clickhouse",
            NOWHERE,
        ],
        ["erase", "--site", "s", "--crm", "c", "--clickhouse", NOWHERE],
        ["export", "--site", "s", "--crm", "c", "--clickhouse", NOWHERE],
        ["resessionize", "--site", "s", *DAYS, "--clickhouse", NOWHERE],
        [
            "import-log",
            "{log}",
            "--site",
            "s",
            "--skip-tracked",
            "--dry-run",
            "--clickhouse",
            NOWHERE,
        ],
        ["serve", "--kafka", "127.0.0.1:1", "--clickhouse", NOWHERE, "--port", "{port}"],
        ["collector", "--kafka", "127.0.0.1:1", "--clickhouse", NOWHERE, "--port", "{port}"],
        ["sessionizer", "--kafka", "127.0.0.1:1", "--clickhouse", NOWHERE, "--port", "{port}"],
        ["dashboard", "--kafka", "127.0.0.1:1", "--clickhouse", NOWHERE, "--port", "{port}"],
        # a serve (its API) or a collector unreachable
        ["sql", "SELECT 1", "--url", NOWHERE],
        ["report", "overview", "--site", "s", "--url", NOWHERE],
        ["identify", "--site", "s", "--visitor", "abcdefgh12", "--crm", "c", "--url", NOWHERE],
        ["erase", "--site", "s", "--crm", "c", "--url", NOWHERE],
        ["export", "--site", "s", "--crm", "c", "--url", NOWHERE],
        ["import-log", "{log}", "--site", "s", "--skip-tracked", "--dry-run", "--url", NOWHERE],
        ["demo", "--collector", NOWHERE, "--sessions", "1"],
        # Kafka unreachable (about 20 s: retried while a broker starts); import-log:
        # tests/importer/test_importlog_cli.py
        ["sessionizer", "--kafka", "127.0.0.1:1", "--port", "{port}"],
    ],
    ids=lambda argv: " ".join(a for a in argv if not a.startswith("{"))[:70],
)
def test_an_unreachable_server_is_exit_status_1_for_every_command(
    argv: list[str], tmp_path: Path
) -> None:
    """`migrate` exited 1, `sql --url` 2, the servers 3 with uvicorn's traceback: every
    command says it in one line and exits 1, a failure while running (2 is a usage error)."""
    log = tmp_path / "access.log"
    log.write_text(
        '1.2.3.4 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "Mozilla/5.0"\n'
    )
    argv = [a.format(log=log, port=_free_port()) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", *argv, "--data", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("clickstream") and proc.stderr.count("\n") == 1, proc.stderr
    assert "127.0.0.1:1" in proc.stderr, proc.stderr


def test_help_lists_the_exit_status() -> None:
    from clickstream.cli import EXIT_STATUS

    text = build_parser().format_help()
    assert EXIT_STATUS in text
    readme = (ROOT / "README.md").read_text()
    for line in EXIT_STATUS.splitlines()[1:]:
        code = line.split()[0]
        if code.isdigit():
            assert f"`{code}`" in readme.split("## CLI", 1)[1], f"README lacks exit status {code}"
