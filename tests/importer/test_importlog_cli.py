"""The CLI hook: add_parser(subparsers) / main(args, settings) -> int."""

from __future__ import annotations

import argparse
import io
import sys

import pytest

from clickstream import settings as cs_settings
from importer import run
from tests.importer.importlog_helpers import LINE, SAMPLE, run_import


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clickstream")
    run.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["import-log", *argv])


def main(*argv: str, **settings: str) -> int:
    return run.main(parse(*argv), cs_settings.load(flags=settings, env={}))


def test_dry_run_prints_the_summary(capsys):
    assert main(str(SAMPLE), "--site", "semi", "--dry-run", "--no-progress") == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1:4] == [
        "imported:   124",
        "skipped:    78",
        "  method: 1  (method not imported (default: GET only))",
    ]
    assert out.startswith("lines read: 202")
    assert (
        "  status: 4  (status not imported (default: 2xx and 304; redirects and errors are not page views))"
        in out
    )
    assert "  static: 73  (static asset (css, js, images, fonts, ...))" in out
    assert err == ""


def test_progress_line_goes_to_stderr(capsys, write):
    path = write("big.log", (LINE + "\n") * 5000)
    args = parse(path, "--site", "s", "--dry-run")
    stats_err = io.StringIO()
    stats = run.ImportStats()
    progress = run.Progress(stats, stream=stats_err, enabled=True, every_s=0.0)
    from importer.convert import Converter
    from importer.formats import compile_format

    for _ in run.iter_hits(
        args.files, compile_format("combined"), Converter("s"), stats, progress=progress
    ):
        pass
    progress.done()
    shown = stats_err.getvalue()
    assert "\r       5,000 lines" in shown and "lines/s  imported 5,000  skipped 0" in shown
    assert shown.endswith("\n")


def test_stdin_and_options(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SAMPLE.read_bytes())))
    assert (
        main(
            "-",
            "--site",
            "semi",
            "--dry-run",
            "--no-progress",
            "--include-static",
            "--status",
            "all",
            "--methods",
            "all",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("lines read: 202 in ")
    assert out.splitlines()[1:3] == ["imported:   202", "skipped:    0"]


def test_nginx_format_string(capsys, write):
    path = write("n.log", LINE + "\n")
    fmt = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
    assert main(path, "--site", "s", "--format", fmt, "--dry-run", "--no-progress") == 0
    assert "imported:   1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--site", "", "--dry-run"], "--site must be"),
        (["--site", "x" * 200, "--dry-run"], "--site must be"),
        (["--site", "x" * 65, "--dry-run"], "--site must be"),
        (
            ["--site", "my shop", "--dry-run"],
            "--site must be 1-64 characters of letters, digits, '.', '_', '-' (the collector's rule), not 'my shop'",
        ),
        (["--site", "s", "--format", "nonsense", "--dry-run"], "not a preset"),
        (["--site", "s", "--status", "2xx", "--dry-run"], "--status"),
        (["--site", "s", "--methods", "G3T", "--dry-run"], "--methods"),
        (["--site", "s", "--match-window", "-1", "--dry-run"], "--match-window"),
        (["--site", "s"], "needs the broker"),
        (["--site", "s", "--skip-tracked", "--dry-run"], "give --url of a running"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv, message):
    assert main(str(SAMPLE), *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("clickstream import-log: error: ") and message in err
    assert err.count("\n") == 1


def test_missing_file_is_named(capsys, tmp_path):
    assert main(str(SAMPLE), str(tmp_path / "nope.log"), "--site", "s", "--dry-run") == 2
    assert "nope.log: No such file or directory" in capsys.readouterr().err


def test_cut_gzip_exits_1_after_importing_what_it_could(capsys, write):
    import gzip

    body = "".join(LINE.replace("id=7", f"id={n}") + "\n" for n in range(3000)).encode()
    path = write("cut.log.gz", gzip.compress(body)[:5000])
    assert main(path, "--site", "s", "--dry-run", "--no-progress") == 1
    out, err = capsys.readouterr()
    assert "  read_error: 1  (file could not be read to its end)" in out
    assert (
        err
        == "clickstream import-log: some input could not be read to its end (see read_error above)\n"
    )


def test_unreachable_serve_for_skip_tracked_is_one_line(capsys, tmp_path):
    from clickstream.broker import free_port

    url = f"http://127.0.0.1:{free_port()}"
    assert (
        main(
            str(SAMPLE), "--site", "s", "--dry-run", "--no-progress", "--skip-tracked", "--url", url
        )
        == 1  # a failure while running (2 is a usage error)
    )
    err = capsys.readouterr().err
    assert err.startswith(
        "clickstream import-log: error: dry run: TrackedError: cannot reach " + url
    )
    assert err.count("\n") == 1


def test_site_outside_the_allow_list_is_refused_like_the_collector_refuses_it(capsys):
    assert main(str(SAMPLE), "--site", "blog", "--dry-run", sites="shop,docs") == 2
    assert capsys.readouterr().err == (
        "clickstream import-log: error: --site 'blog' is not in the `sites` allow list (docs, shop)\n"
    )
    assert main(str(SAMPLE), "--site", "shop", "--dry-run", "--no-progress", sites="shop,docs") == 0


def test_unreachable_broker_is_one_line():
    """aiokafka logged each reconnection attempt (some 70 lines) before the error."""
    import subprocess
    from pathlib import Path

    from clickstream.broker import free_port

    bootstrap = f"127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "import-log", str(SAMPLE), "--site", "s"]
        + ["--no-progress", "--kafka", bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    # a failure while running, as for every command (2 is a usage error)
    assert proc.returncode == 1 and proc.stdout.startswith("lines read: ")
    err = proc.stderr
    assert err.startswith(f"clickstream import-log: error: Kafka at {bootstrap}: BrokerError: ")
    assert err.count("\n") == 1, err


def test_a_file_no_line_of_which_matches_the_format_is_named_on_stderr(capsys, write):
    # a common log read as combined (the default): every line is malformed; the summary
    # alone (exit 0, "imported: 0") let a wrong --format pass unnoticed in a cron job
    common = write("common.log", "".join(LINE.rsplit(' "', 2)[0] + "\n" for _ in range(3)))
    good = write("good.log", LINE + "\n")
    assert main(common, good, "--site", "s", "--dry-run", "--no-progress") == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1:4] == [
        "imported:   1",
        "skipped:    3",
        "  malformed: 3  (does not match the log format)",
    ]
    assert err == (
        f"clickstream import-log: warning: no line of {common} matched the format combined "
        """('%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"'): """
        "give the server's own with --format (importer/README.md)\n"
    )
    assert main(common, "--site", "s", "--format", "common", "--dry-run", "--no-progress") == 0
    assert capsys.readouterr().err == ""
    # an empty file, or one whose lines are all too long, says nothing about the format
    empty = write("empty.log", "")
    assert main(empty, "--site", "s", "--dry-run", "--no-progress") == 0
    assert capsys.readouterr().err == ""


def test_hostname_may_be_given_as_the_sites_url(capsys, write, monkeypatch):
    # `--hostname https://shop.example` made the page URL http://https://shop.example/…
    # (host "https": every referrer from the site counted as a referral)
    from importer.convert import Converter

    made: list[tuple[str, str]] = []
    real_init = Converter.__init__

    def spy(self, *a, **kw):
        real_init(self, *a, **kw)
        made.append((self.scheme, self.host))

    monkeypatch.setattr(Converter, "__init__", spy)
    path = write("h.log", LINE + "\n")
    for given, expected in [
        ("shop.example", ("http", "shop.example")),
        ("https://Shop.Example/", ("https", "shop.example")),
        ("http://shop.example:8080", ("http", "shop.example:8080")),
        ("[2001:db8::1]:8443", ("http", "[2001:db8::1]:8443")),
    ]:
        made.clear()
        assert main(path, "--site", "s", "--hostname", given, "--dry-run", "--no-progress") == 0
        assert made == [expected], given
    capsys.readouterr()
    for bad in ["ftp://shop.example", "shop.example/blog", "a b", "https://"]:
        assert main(path, "--site", "s", "--hostname", bad, "--dry-run") == 2
        err = capsys.readouterr().err
        assert (
            err.startswith("clickstream import-log: error: --hostname: ") and err.count("\n") == 1
        )


def test_hostname_url_gives_the_page_urls_scheme(write):
    (hit,), _ = run_import([write("one.log", LINE + "\n")], host="shop.example", scheme="https")
    assert hit.url == "https://shop.example/shop/item?id=7&utm_source=news"
