"""`clickstream serve` as a user starts it: a second serve on a taken port is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, Served


def test_a_second_serve_on_the_same_port_is_refused_in_one_line(
    serve: Served, tmp_path: Path
) -> None:
    port = serve.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "clickstream.cli",
            "serve",
            "--port",
            port,
            "--data",
            str(tmp_path / "other"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"clickstream: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another `clickstream serve`? pick --port)"
    ]
    assert not (tmp_path / "other" / "serve.json").exists()


def test_identify_erase_and_demo_without_url_use_the_running_serve(serve: Served) -> None:
    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clickstream.cli", *argv, "--data", str(serve.data)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env=_env(serve),
        )

    linked = cli("identify", "--site", "shop", "--visitor", "abcdefgh12", "--crm", "c1")
    assert linked.returncode == 0, linked.stderr
    assert serve.sql("SELECT visitor_id, crm_id FROM clickstream.identities FINAL") == [
        ["abcdefgh12", "c1"]
    ]
    erased = cli("erase", "--site", "shop", "--crm", "c1")
    assert erased.returncode == 0, erased.stderr
    assert serve.sql("SELECT count() FROM clickstream.identities FINAL") == [[0]]
    demo = cli("demo", "--sessions", "3", "--days", "1", "--site", "demo")
    assert demo.returncode == 0, demo.stderr
    assert f"sessions to {serve.url} (site 'demo')" in demo.stdout
    serve.flush()
    assert serve.sql("SELECT count() > 0 FROM clickstream.hits FINAL WHERE site = 'demo'") == [[1]]


def _env(serve: Served) -> dict[str, str]:
    import os

    return {**os.environ, "CLICKSTREAM_API_TOKEN": serve.token}


def test_report_and_sql_reach_a_serve_whose_reports_need_a_token(tmp_path: Path) -> None:
    import os

    from tests.conftest import start_serve

    # no token given: serve generates one into <data>/api_token; reports need the read scope
    s = start_serve(tmp_path / "data", "--reports-auth", "on", token="")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKSTREAM_")}
        for argv in (
            ["report", "overview", "--site", "shop", "--format", "json"],
            ["sql", "SELECT 1 AS one", "--format", "json"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "clickstream.cli", *argv, "--data", str(s.data)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=60,
                env=env,
            )
            assert done.returncode == 0, done.stderr
    finally:
        s.proc.kill()
        s.proc.wait()


def test_serve_prints_a_generated_token_but_never_the_configured_one(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from clickstream import serve, settings

    own = settings.load(flags={"data": str(tmp_path), "api_token": "operator-secret-1"}, env={})
    assert serve.api_token(own) == ("operator-secret-1", False)
    serve._announce(own, "operator-secret-1", False, "127.0.0.1:9092", False)
    out = capsys.readouterr().out
    assert "operator-secret-1" not in out and "API token: the api_token setting" in out

    fresh = settings.load(flags={"data": str(tmp_path / "d")}, env={})
    token, generated = serve.api_token(fresh)
    assert generated and (tmp_path / "d" / "api_token").read_text().strip() == token
    assert (tmp_path / "d" / "api_token").stat().st_mode & 0o777 == 0o600
    serve._announce(fresh, token, generated, "127.0.0.1:9092", True)
    assert (
        f"API token (new): {token} (saved in {tmp_path / 'd' / 'api_token'})"
        in capsys.readouterr().out
    )
    assert serve.api_token(fresh) == (token, False)  # the next start reuses it


def test_a_single_part_announces_itself_not_a_dashboard(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`clickstream collector` printed "Clickstream is running: dashboard …" and the
    ClickHouse DSN it never opens; `clickstream sessionizer` printed a snippet to paste."""
    from clickstream import serve, settings

    s = settings.load(flags={"data": str(tmp_path), "port": "8123"}, env={})
    collector = serve.Roles(collector=True, sessionizer=False, dashboard=False)
    serve._announce(s, "t", False, "k:9092", False, collector)
    out = capsys.readouterr().out
    assert out.startswith("Clickstream collector is running on http://127.0.0.1:8123/\n")
    assert "dashboard" not in out and "ClickHouse" not in out and "/p.gif?s=SITE" in out
    sessionizer = serve.Roles(collector=False, sessionizer=True, dashboard=False)
    serve._announce(s, "t", False, "k:9092", False, sessionizer)
    out = capsys.readouterr().out
    assert out.startswith("Clickstream sessionizer is running on http://127.0.0.1:8123/\n")
    assert "  ClickHouse: chdb://" in out and "p.gif" not in out
    serve._announce(s, "t", False, "k:9092", False)
    assert capsys.readouterr().out.startswith(
        "Clickstream is running: dashboard http://127.0.0.1:8123/\n"
    )
