"""The HTTP API, CSV download, dashboard assets and CLI all show the same run() figures."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from starlette.applications import Starlette

from reports import cli, web
from reports.query import ReportQuery
from reports.run import run, to_csv
from tests.reports.report_rows import hit, load, session

QS = "site=shop&from=2024-01-10&to=2024-01-10"
FUNNEL = QS + "&step=/&step=/cart*&window=1h"


@pytest.fixture(scope="module")
def db(chdb_client: Client, fresh_db: Any) -> str:
    name = fresh_db()
    load(
        chdb_client,
        name,
        "hits",
        [
            hit(visitor_id="a", ts="2024-01-10 10:00:00", path="/", next_page="/cart"),
            hit(visitor_id="a", ts="2024-01-10 10:05:00", path="/cart"),
            hit(
                visitor_id="b", ts="2024-01-10 11:00:00", path="/", next_page="/=cmd|' /C calc'!A0"
            ),
            hit(visitor_id="b", ts="2024-01-10 11:01:00", path="/=cmd|' /C calc'!A0"),
        ],
    )
    load(
        chdb_client,
        name,
        "sessions",
        [
            session(visitor_id="a", start="2024-01-10 10:00:00", pageviews=2),
            session(visitor_id="b", start="2024-01-10 11:00:00", pageviews=2),
        ],
    )
    return name


@pytest.fixture
async def http(chdb_client: Client, db: str) -> Any:
    app = Starlette(routes=web.routes)
    app.state.warehouse = chdb_client
    app.state.settings = SimpleNamespace(database=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_api_returns_the_run_result(
    http: httpx.AsyncClient, chdb_client: Client, db: str
) -> None:
    res = await http.get(f"/api/reports/funnel?{FUNNEL}")
    assert res.status_code == 200
    body = res.json()
    assert [(s["step"], s["count"], s["conversion"]) for s in body["steps"]] == [
        ("/", 2, 1.0),
        ("/cart*", 1, 0.5),
    ]
    direct = run(
        ReportQuery.parse(
            "funnel",
            {
                "site": ["shop"],
                "from": ["2024-01-10"],
                "to": ["2024-01-10"],
                "step": ["/", "/cart*"],
                "window": ["1h"],
            },
        ),
        chdb_client,
        db,
    )
    body.pop("query"), direct.pop("query")
    assert body == direct


async def test_api_bad_params_get_400_with_a_message(http: httpx.AsyncClient) -> None:
    res = await http.get("/api/reports/funnel?site=shop&step=cart")
    assert res.status_code == 400
    assert res.json() == {
        "error": "funnel step 'cart' must be a path glob starting with / or event:NAME"
    }
    assert (await http.get("/api/reports/overview")).json() == {
        "error": "site is required (e.g. site=example.com)"
    }
    assert (await http.get("/api/reports/nope?site=shop")).status_code == 404
    assert (await http.get(f"/api/reports/overview?{QS}&format=csv&table=nope")).status_code == 400


async def test_csv_download_of_a_table(http: httpx.AsyncClient) -> None:
    res = await http.get(f"/api/reports/funnel?{FUNNEL}&format=csv")
    assert res.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        res.headers["content-disposition"]
        == 'attachment; filename="funnel-steps-2024-01-10-2024-01-10.csv"'
    )
    assert res.text.splitlines() == [
        "step,count,conversion,dropoff,dropoff_rate,median_seconds_from_previous",
        "/,2,1.0,0,0.0,",
        "/cart*,1,0.5,1,0.5,300.0",
    ]
    res = await http.get(f"/api/reports/overview?{QS}&format=csv&table=top_pages")
    assert res.text.splitlines() == [
        "page,pageviews,visitors",
        "/,2,2",
        "/=cmd|' /C calc'!A0,1,1",
        "/cart,1,1",
    ]


def test_csv_cells_never_start_a_spreadsheet_formula() -> None:
    rows = [{"term": "=HYPERLINK(1)", "n": -3, "path": ["/", "/a"], "x": None, "y": "+1 x"}]
    assert to_csv(rows) == "term,n,path,x,y\n'=HYPERLINK(1),-3,/ > /a,,'+1 x\n"
    assert to_csv([]) == ""
    assert to_csv([], ("term", "n")) == "term,n\n"  # a table without rows keeps its header
    assert to_csv([{"weeks": [3, 1, None]}]) == "weeks\n3 1 \n"


async def test_index_lists_reports_and_sites(http: httpx.AsyncClient) -> None:
    body = (await http.get("/api/reports")).json()
    assert body["reports"] == [
        "overview",
        "funnel",
        "returning",
        "paths",
        "searches",
        "backloops",
        "customers",
    ]
    assert body["sites"] == ["shop"]


async def test_dashboard_and_assets_are_local(http: httpx.AsyncClient) -> None:
    page = await http.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    # the report tabs are in-page links (#report=…); every other reference is one of ours
    assert [a for a in links if a.startswith("#")] == [
        f"#report={r}"
        for r in ("overview", "funnel", "returning", "paths", "searches", "backloops")
        + ("customers", "install")
    ]
    assets = [a for a in links if a != "data:," and not a.startswith("#")]
    assert assets == [
        "/reports/static/dashboard.css",
        "/reports/static/charts.js",
        "/reports/static/dashboard.js",
    ]
    for path in assets:
        res = await http.get(path)
        assert res.status_code == 200
        assert not re.search(r"https?://", res.text), f"{path} loads something from the network"
    assert 'name="viewport"' in page.text


def parse_cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clickstream")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["report", *argv])


def test_cli_json_table_and_csv(chdb_client: Client, db: str) -> None:
    argv = [
        "funnel",
        "--site",
        "shop",
        "--from",
        "2024-01-10",
        "--to",
        "2024-01-10",
        "--step",
        "/",
        "--step",
        "/cart*",
        "--window",
        "1h",
    ]
    out = io.StringIO()
    assert cli.main(parse_cli(*argv, "--format", "json"), chdb_client, db, out=out) == 0
    assert [s["count"] for s in json.loads(out.getvalue())["steps"]] == [2, 1]
    out = io.StringIO()
    assert cli.main(parse_cli(*argv, "--format", "csv"), chdb_client, db, out=out) == 0
    assert out.getvalue().splitlines()[2] == "/cart*,1,0.5,1,0.5,300.0"
    out = io.StringIO()
    assert cli.main(parse_cli(*argv), chdb_client, db, out=out) == 0
    text = out.getvalue()
    assert text.startswith("funnel · site shop · 2024-01-10 to 2024-01-10\n")
    assert (
        "  step    count  conversion  dropoff  dropoff_rate  median_seconds_from_previous\n" in text
    )
    assert "  /cart*  1      0.5         1        0.5           300\n" in text


def test_cli_bad_param_is_one_line(
    chdb_client: Client, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(parse_cli("overview", "--site", "shop", "--from", "yesterday"), chdb_client, db)
    assert code == 2
    assert (
        capsys.readouterr().err
        == "clickstream report: from must be a date YYYY-MM-DD, got 'yesterday'\n"
    )


def test_cli_table_shows_number_lists_with_nulls() -> None:
    # a cohort's weeks after `to` are null; its retention is floats: neither is a path
    assert cli._fmt([2, 1, None]) == "2 1 -"
    assert cli._fmt([1.0, 0.5, None]) == "1 0.5 -"
    assert cli._fmt(["/", "/cart"]) == "/ > /cart"


def test_cli_table_format_refuses_an_unknown_table(
    chdb_client: Client, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # as --format csv and the API do; it printed every table before
    args = parse_cli("overview", "--site", "shop", "--table", "nope", "--format", "table")
    out = io.StringIO()
    assert cli.main(args, chdb_client, db, out=out) == 2
    assert out.getvalue() == ""
    err = capsys.readouterr().err
    assert err.startswith("clickstream report: report overview has no table 'nope'; tables: ")
    assert err.count("\n") == 1


def test_clickstream_report_command_end_to_end(
    chdb_client: Client, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from clickstream import warehouse
    from clickstream.cli import main as clickstream_main

    dsn = next(k for k, v in warehouse._CLIENTS.items() if v is chdb_client)
    argv = [
        "report",
        "funnel",
        "--site",
        "shop",
        "--from",
        "2024-01-10",
        "--to",
        "2024-01-10",
        "--step",
        "/",
        "--step",
        "/cart*",
        "--window",
        "1h",
        "--format",
        "csv",
        "--clickhouse",
        dsn,
        "--database",
        db,
    ]
    assert clickstream_main(argv) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "/,2,1.0,0,0.0,",
        "/cart*,1,0.5,1,0.5,300.0",
    ]
    assert clickstream_main([*argv[:-4], "--by", "household", "--clickhouse", dsn]) == 2
    assert "bad by 'household'; accepted: visitor, session" in capsys.readouterr().err


async def test_api_counts_days_in_the_sites_time_zone(chdb_client: Client, db: str) -> None:
    from clickstream.settings import load

    app = Starlette(routes=web.routes)
    app.state.warehouse = chdb_client
    app.state.settings = load(flags={"database": db, "time_zone": "Pacific/Kiritimati"}, env={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        # 10:00 and 11:00 UTC on the 10th are past midnight of the 11th at UTC+14
        on_10th = (await c.get(f"/api/reports/overview?{QS}")).json()
        on_11th = (
            await c.get("/api/reports/overview?site=shop&from=2024-01-11&to=2024-01-11")
        ).json()
    assert (on_10th["totals"]["sessions"], on_11th["totals"]["sessions"]) == (0, 2)
    assert on_11th["series"][0]["t"] == "2024-01-11"


def test_report_without_a_serve_or_data_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It opened chDB in the data dir, creating an empty one, and answered
    'Database clickstream does not exist'."""
    from clickstream.cli import main as clickstream_main

    data = tmp_path / "none"
    assert clickstream_main(["report", "overview", "--site", "s", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"clickstream report: no running `clickstream serve` and no data in {data}: "
        "give --data of a serve, --url of one, or --clickhouse DSN\n"
    )
    assert not data.exists()
