"""``clickstream report NAME …``: the same run() as the API, printed as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO

import orjson
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from reports.query import REPORT_NAMES, QueryError, ReportQuery, parse_for_site
from reports.run import run, table_csv, tables

# flag dest -> API parameter name
OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--site", "site", "site id (required)"),
    ("--from", "from", "first day YYYY-MM-DD (default: 29 days before --to)"),
    ("--to", "to", "last day YYYY-MM-DD, a day of the site's time_zone (default: today there)"),
    ("--channel", "channel", "only sessions from this channel"),
    ("--device", "device", "only this device type (desktop, mobile, tablet)"),
    ("--country", "country", "only this country code"),
    ("--crm", "crm", "any | linked | anonymous visitors"),
    ("--limit", "limit", "rows per table (default 10)"),
    ("--window", "window", "funnel: window such as 30m, 1d (default 1d)"),
    ("--by", "by", "funnel: visitor | session"),
    ("--mode", "mode", "funnel: default | strict (no other page between steps)"),
    ("--breakdown", "breakdown", "funnel: channel | device | country | campaign | browser | os"),
    ("--depth", "depth", "paths: pages per path (default 3)"),
    ("--page", "page", "paths: transitions of this page (default: the top page)"),
    ("--weeks", "weeks", "returning: cohort weeks (default 8)"),
    ("--crm-id", "crm_id", "customers: one customer, with the timeline"),
    ("--interval", "interval", "overview: day | hour"),
    ("--table", "table", "csv/table: which table of the report (default: its main one)"),
)


def add_parser(
    subparsers: Any, add_setting_flags: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.ArgumentParser:
    """The ``report`` subcommand; ``add_setting_flags`` adds the shared settings flags
    (``--clickhouse``, ``--data``, ``--database``, ...) when the main CLI passes it."""
    p = subparsers.add_parser(
        "report",
        help="print a report (the same figures as the dashboard and /api/reports/NAME)",
        description="Run a report. Example: clickstream report funnel --site shop "
        "--step / --step '/product/*' --step event:purchase --format table",
    )
    p.add_argument("name", choices=REPORT_NAMES, help="the report")
    for flag, dest, help_text in OPTIONS:
        p.add_argument(flag, dest=f"r_{dest}", metavar=dest.upper(), help=help_text)
    p.add_argument(
        "--step",
        dest="r_step",
        action="append",
        metavar="STEP",
        help="funnel step: a path glob (/cart*) or event:NAME; repeat in order",
    )
    p.add_argument("--format", dest="out_format", choices=("table", "json", "csv"), default="table")
    p.add_argument(
        "--url",
        default="",
        help="ask a running `clickstream serve` (its /api/reports) instead of opening the "
        "warehouse here (default: the serve running with --data, if any)",
    )
    if add_setting_flags is not None:
        add_setting_flags(p)
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace, settings: Any) -> int:
    """Entry from ``clickstream report``: settings name the warehouse (or ``--url`` a serve)."""
    if getattr(args, "url", ""):
        return main_remote(args, args.url, token=_token(settings))
    from clickstream import running, warehouse

    serve = None if settings.clickhouse else running.find(settings.data_dir)
    if serve:  # its chDB files are that process's: ask its API
        return main_remote(args, serve["url"], token=_token(settings))
    if not settings.clickhouse and not (settings.data_dir / "chdb").is_dir():
        # nothing to read here: opening chDB would create an empty one in ./clickstream-data
        print(
            f"clickstream report: no running `clickstream serve` and no data in "
            f"{settings.data_dir}: give --data of a serve, --url of one, or --clickhouse DSN",
            file=sys.stderr,
        )
        return 2

    client = warehouse.connect(settings.clickhouse_dsn, settings.chdb_max_memory)
    return main(args, client, settings.database, settings=settings)


def _token(settings: Any) -> str:
    """A token for a serve whose reports need the read scope: the read token, else the
    admin one (``--api-token`` or the serve's ``<data>/api_token``)."""
    for value in (getattr(settings, "read_token", ""), getattr(settings, "api_token", "")):
        if value and not str(value).startswith("sha256:"):
            return str(value)
    path = getattr(settings, "data_dir", None)
    token_file = path / "api_token" if path is not None else None
    return token_file.read_text().strip() if token_file is not None and token_file.exists() else ""


def main_remote(
    args: argparse.Namespace, url: str, out: TextIO | None = None, token: str = ""
) -> int:
    """The same report from a running serve: its run() answers /api/reports/NAME."""
    out = out or sys.stdout
    params = params_from_args(args)
    try:
        query = ReportQuery.parse(args.name, params)
    except QueryError as exc:
        print(f"clickstream report: {exc}", file=sys.stderr)
        return 2
    qs = urllib.parse.urlencode([(k, v) for k, vs in params.items() for v in vs])
    full = f"{url.rstrip('/')}/api/reports/{args.name}?{qs}"
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with urllib.request.urlopen(
            urllib.request.Request(full, headers=headers), timeout=120
        ) as resp:
            result = orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = orjson.loads(exc.read()).get("error", "")
        except orjson.JSONDecodeError:
            message = exc.reason
        print(f"clickstream report: {exc.code}: {message}", file=sys.stderr)
        return 2 if exc.code == 400 else 1
    except urllib.error.URLError as exc:
        print(f"clickstream report: cannot reach {url}: {exc.reason}", file=sys.stderr)
        return 1
    return _write(args, query, result, out)


def params_from_args(args: argparse.Namespace) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for _flag, dest, _help in OPTIONS:
        value = getattr(args, f"r_{dest}", None)
        if value is not None:
            out[dest] = [value]
    if getattr(args, "r_step", None):
        out["step"] = list(args.r_step)
    return out


def main(
    args: argparse.Namespace,
    client: Client,
    database: str = "clickstream",
    out: TextIO | None = None,
    settings: Any = None,
) -> int:
    out = out or sys.stdout
    try:
        query = parse_for_site(args.name, params_from_args(args), settings)
        result = run(query, client, database)
        return _write(args, query, result, out)
    except QueryError as exc:
        print(f"clickstream report: {exc}", file=sys.stderr)
        return 2
    except ClickHouseError as exc:
        print(
            f"clickstream report: the warehouse could not run it: {str(exc).splitlines()[0]}",
            file=sys.stderr,
        )
        return 1


def _write(
    args: argparse.Namespace, query: ReportQuery, result: dict[str, Any], out: TextIO
) -> int:
    try:
        if args.out_format == "json":
            out.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
        elif args.out_format == "csv":
            out.write(table_csv(query, result)[1])
        else:
            out.write(render_tables(query, result))
    except QueryError as exc:
        print(f"clickstream report: {exc}", file=sys.stderr)
        return 2
    return 0


def render_tables(query: ReportQuery, result: dict[str, Any]) -> str:
    chunks = [f"{query.name} · site {query.site} · {query.date_from} to {query.date_to}\n"]
    for key, value in result.items():
        if isinstance(value, dict) and key != "query":
            chunks.append(f"\n{key}\n" + "".join(f"  {k}: {_fmt(v)}\n" for k, v in value.items()))
    found = tables(result)
    if query.table and query.table not in found:
        raise QueryError(
            f"report {query.name} has no table {query.table!r}; tables: {', '.join(found)}"
        )
    only = {query.table: found[query.table]} if query.table else found
    for key, rows in only.items():
        chunks.append(f"\n{key}\n{text_table(rows)}")
    return "".join(chunks)


def text_table(rows: list[dict[str, Any]], width: int = 48) -> str:
    if not rows:
        return "  (none)\n"
    columns = list(rows[0])
    cells = [[_fmt(r.get(c))[:width] for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(vals: list[str]) -> str:
        return "  " + "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)]) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # a path reads a > b; numbers (weeks, retention) are spaced
        if all(isinstance(v, str) for v in value):
            return " > ".join(value)
        return " ".join("-" if v is None else _fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
