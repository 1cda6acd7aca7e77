"""The ``clickstream`` command. Errors are one line on stderr, never a traceback.

Exit status (:data:`EXIT_STATUS`, the ``--help`` epilog): 2 when the command line or the
settings are wrong and nothing was done (argparse, :class:`SettingsError`,
:class:`CLIError`); 1 when the command failed while running — ClickHouse, Kafka, a
``serve`` or a collector unreachable or refusing (:class:`CLIFailure`,
``WarehouseError``, ``BrokerError``, ``OSError``, anything unexpected).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from clickstream import settings as settings_mod
from clickstream.settings import SETTINGS, Settings, SettingsError

Handler = Callable[[argparse.Namespace, Settings], int]


class CLIError(Exception):
    """A one-line error for the user about what they asked (exit 2: usage)."""

    exit_code = 2


class CLIFailure(CLIError):
    """A one-line error about a failure while running: a server that cannot be reached or
    refused the request (exit 1, as an unreachable ClickHouse or Kafka)."""

    exit_code = 1


EXIT_STATUS = """exit status:
  0    done
  1    failed while running: ClickHouse, Kafka, the serve API or the collector
       unreachable or refusing (import-log: also an input not read to its end)
  2    usage: a bad option, value or setting; nothing was done
  130  interrupted (Ctrl-C)
  141  the reader of the output left (`| head`)"""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line like every other CLI error: the problem,
    then where the options are listed (no usage block of the 60 settings flags)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def _unrecognized(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """The message for arguments no option took; a mistyped flag names the nearest one."""
    flags = [e for e in extras if e.startswith("-") and len(e) > 1]
    if not flags:
        return "unrecognized arguments: " + " ".join(extras)
    name = flags[0].split("=", 1)[0]
    options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"unrecognized argument {name}" + (f"; did you mean {close[0]}?" if close else "")


def _is_base_url(value: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            sub: argparse.ArgumentParser = action.choices[command]
            return sub
    return parser


def _add_setting_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML settings file (also CLICKSTREAM_CONFIG)")
    group = p.add_argument_group("settings (flags > CLICKSTREAM_* env > TOML file > defaults)")
    for s in SETTINGS:
        flag = "--" + s.name.replace("_", "-")
        metavar = s.name.upper() if s.type is not bool else "BOOL"
        default = "" if s.secret else f" (default: {s.default})"
        text = f"{settings_mod.help_text(s)}{default}"
        # a boolean flag alone means true (`--respect-dnt`), or takes a value (`--respect-dnt off`)
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if s.type is bool else {}
        group.add_argument(
            flag, dest=s.name, metavar=metavar, default=None, help=text.replace("%", "%%"), **extra
        )


def resolve(args: argparse.Namespace) -> Settings:
    flags = {s.name: getattr(args, s.name, None) for s in SETTINGS}
    return settings_mod.load(flags=flags, config_file=getattr(args, "config", None))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from clickstream.serve import Roles, run

    roles = {
        "serve": Roles(),
        "collector": Roles(collector=True, sessionizer=False, dashboard=False),
        "sessionizer": Roles(collector=False, sessionizer=True, dashboard=False),
        "dashboard": Roles(collector=False, sessionizer=False, dashboard=True),
    }[args.command]
    if args.command != "serve" and not settings.kafka:
        raise CLIError(f"`clickstream {args.command}` needs --kafka (only `serve` embeds a broker)")
    return run(settings, roles)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from clickstream import warehouse

    if args.apply and args.cluster and not settings.clickhouse:
        # the embedded chDB has no cluster: it answered "Requested cluster ... not found"
        raise CLIError("--apply runs the ON CLUSTER DDL on a server: give --clickhouse DSN")
    if not settings.clickhouse and not args.cluster:
        from clickstream import running

        if running.find(settings.data_dir):  # its chDB files are locked by that process
            raise CLIError(
                f"the `clickstream serve` running with --data {settings.data_dir} owns its "
                "chDB and migrated it at start; stop it first, or give --clickhouse DSN"
            )
    if args.cluster:
        from clickstream.cluster import ClusterDDLError, print_or_apply

        client = warehouse.connect(settings.clickhouse_dsn) if args.apply else None
        try:
            statements = print_or_apply(client, settings.database, args.cluster, args.apply)
        except (ClusterDDLError, warehouse.WarehouseError) as exc:
            raise CLIError(str(exc)) from None
        if args.apply:
            print(f"applied {len(statements)} statements ON CLUSTER {args.cluster}")
        else:
            print(";\n\n".join(statements) + ";")
        return 0
    if args.apply:
        raise CLIError("--apply goes with --cluster NAME")
    from clickstream import retention

    client = warehouse.connect(settings.clickhouse_dsn)
    applied = warehouse.migrate(client, settings.database)
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    # retention_days / retention_tables are a TTL: migrate sets it, as serve does at start
    for table, days in retention.apply(client, settings.database, settings).items():
        print(
            f"retention: {settings.database}.{table} keeps {days} days"
            if days
            else f"retention: {settings.database}.{table} keeps rows forever (TTL removed)"
        )
    return 0


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    """Against a running serve's API (--url), else directly against --clickhouse."""
    import orjson

    from clickstream import warehouse
    from clickstream.sqlguard import SQLRefused, check_read_only

    try:
        statement = check_read_only(args.query)
    except SQLRefused as exc:
        raise CLIError(str(exc)) from None
    url = args.url or ("" if settings.clickhouse else _running_url(settings))
    if url:
        token = settings.api_token or _token_file(settings)
        req = urllib.request.Request(
            url.rstrip("/") + "/api/sql",
            data=statement.encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                doc = orjson.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                message = orjson.loads(body).get("error", "")
            except (orjson.JSONDecodeError, AttributeError):
                message = body.decode("utf-8", "replace")[:200]
            error = CLIError if exc.code == 400 else CLIFailure  # 400: the statement
            raise error(f"{url} answered {exc.code}: {message}") from None
        except urllib.error.URLError as exc:
            raise CLIFailure(f"cannot reach {url}: {exc.reason}") from None
        columns, rows = doc["columns"], doc["rows"]
    else:
        if not settings.clickhouse:
            raise CLIError(
                f"no running `clickstream serve` with --data {settings.data_dir}: "
                "give --url of one, or --clickhouse DSN"
            )
        result = warehouse.read_query(
            warehouse.connect(settings.clickhouse_dsn), statement, comment="cli:sql"
        )
        columns, rows = result.columns, result.rows
    print_table(columns, rows, args.format)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from clickstream import demo
    from collector.validate import SITE_RE

    if not SITE_RE.match(args.site):  # the collector would answer 400 to every event
        raise CLIError(f"--site {args.site!r}: 1-64 characters of letters, digits, '.', '_', '-'")
    if not 1 <= args.sessions <= 1_000_000:
        raise CLIError("--sessions must be 1..1000000")
    if not 1 <= args.days <= 30:
        raise CLIError(
            "--days must be 1..30 (the collector accepts client times up to 30 days old)"
        )
    import httpx

    args.collector = args.collector or _running_url(settings) or "http://127.0.0.1:8000"
    try:
        n_sessions, n_events = demo.run(
            args.collector, args.site, args.sessions, args.days, args.seed
        )
    except (OSError, RuntimeError, httpx.HTTPError) as exc:
        raise CLIFailure(f"demo traffic to {args.collector} failed: {exc}") from None
    print(
        f"sent {n_events} events in {n_sessions} sessions to {args.collector} (site {args.site!r})"
    )
    return 0


def _running_url(settings: Settings) -> str:
    from clickstream import running

    info = running.find(settings.data_dir)
    return str(info["url"]) if info else ""


def _token_file(settings: Settings) -> str:
    path = settings.data_dir / "api_token"
    return path.read_text().strip() if path.exists() else ""


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> None:
    """``csv`` and ``table`` print values as ClickHouse's own CSV does (arrays ``['a','b']``,
    tuples, maps; ``clickstream.chtext``), so the text is clickhouse-client's."""
    import orjson

    from clickstream import chtext

    if fmt == "json":
        sys.stdout.write(
            orjson.dumps(
                {"columns": list(columns), "rows": [list(r) for r in rows]}, default=str
            ).decode()
            + "\n"
        )
        return
    if fmt == "csv":
        sys.stdout.write(chtext.csv_line(columns))
        for row in rows:
            sys.stdout.write(chtext.csv_line(row))
        return
    cells = [[str(c) for c in columns]] + [[chtext.cell(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="clickstream",
        description="Self-hosted clickstream and web-bug tracking: pixel/beacon -> Kafka -> sessions in ClickHouse.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "serve",
        help="run everything on one port: collector workers, sessionizer, dashboard, API (embedded broker unless --kafka)",
    )
    _add_setting_flags(p)
    p.set_defaults(handler=cmd_serve)
    for role, text in (
        ("collector", "the collector (pixel, beacon) alone"),
        ("sessionizer", "the sessionizer (Kafka -> ClickHouse) alone"),
        ("dashboard", "the dashboard, reports API and SQL API alone"),
    ):
        p = sub.add_parser(role, help=text)
        _add_setting_flags(p)
        p.set_defaults(handler=cmd_serve)
    p = sub.add_parser("migrate", help="create or upgrade the ClickHouse schema (idempotent)")
    p.add_argument(
        "--cluster",
        metavar="NAME",
        help="print the ON CLUSTER DDL (Replicated local + Distributed tables)",
    )
    p.add_argument(
        "--apply",
        action="store_true",
        help="with --cluster: run it on --clickhouse instead of printing",
    )
    _add_setting_flags(p)
    p.set_defaults(handler=cmd_migrate)
    p = sub.add_parser("sql", help="run a read-only query (via a running serve's API or a DSN)")
    p.add_argument(
        "query", help='one read statement, e.g. "SELECT count() FROM clickstream.hits FINAL"'
    )
    p.add_argument(
        "--url", help="base URL of a running `clickstream serve`, e.g. http://127.0.0.1:8000"
    )
    p.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="output (default: table); csv and table write arrays, tuples and maps as "
        "ClickHouse's CSV does: \"['a','b']\", [1,2]",
    )
    _add_setting_flags(p)
    p.set_defaults(handler=cmd_sql)
    p = sub.add_parser("demo", help="send realistic synthetic traffic to a running collector")
    p.add_argument(
        "--collector",
        help="collector base URL (default: the serve running with --data, "
        "else http://127.0.0.1:8000)",
    )
    p.add_argument("--site", default="demo", help="site id to send as (default: demo)")
    p.add_argument("--sessions", type=int, default=500, help="sessions to send (default: 500)")
    p.add_argument(
        "--days", type=int, default=14, help="spread over the last N days, 1..30 (default: 14)"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same traffic)")
    _add_setting_flags(p)
    p.set_defaults(handler=cmd_demo)
    for add in _plugins():
        add(sub, _add_setting_flags)
    return parser


PLUGINS = (
    "reports.cli",
    "importer.cli",
    "clickstream.cli_extra",
    "collector.snippet",
    "sessionizer.cli",
)


def _plugins() -> list[Callable[..., None]]:
    """Subcommands contributed by the other packages of the distribution (all required)."""
    return [__import__(module, fromlist=["add_parser"]).add_parser for module in PLUGINS]


SERVER_COMMANDS = frozenset({"serve", "collector", "sessionizer", "dashboard"})


def _quiet_client_libraries() -> None:
    """A one-shot command reports a failure in its own one line; the client libraries'
    logs of the same failure (aiokafka: every reconnection attempt, some 70 lines for an
    unreachable broker; clickhouse-connect: "Unexpected Http Driver Exception") are kept
    for ``--log-level debug``. The servers configure logging themselves."""
    import logging

    for name in ("aiokafka", "clickhouse_connect"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    command = _subparser(parser, getattr(args, "command", None))
    if extras:
        command.error(_unrecognized(command, extras))
    for option in ("url", "collector"):  # the base URL of a serve or a collector
        value = getattr(args, option, None)
        if value and not _is_base_url(value):
            command.error(f"--{option} {value!r}: an http:// or https:// URL expected")
    try:
        settings = resolve(args)
        if args.command not in SERVER_COMMANDS and settings.log_level != "debug":
            _quiet_client_libraries()
        return int(args.handler(args, settings))
    except (SettingsError, CLIError) as exc:
        print(f"clickstream: error: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CLIError) else 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `clickstream migrate --cluster prod | head`: the reader left, nothing to report
        # (stdout goes to /dev/null so that the interpreter's final flush stays quiet)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # one line for the user; details with --log-level debug
        from clickstream.broker import BrokerError
        from clickstream.warehouse import WarehouseError

        if isinstance(exc, (BrokerError, WarehouseError, OSError)):
            print(f"clickstream: error: {exc}", file=sys.stderr)
            return 1
        if (
            getattr(args, "log_level", None) == "debug"
            or os.environ.get("CLICKSTREAM_LOG_LEVEL") == "debug"
        ):
            raise
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""
        print(
            f"clickstream: error: {type(exc).__name__}: {first} (details: --log-level debug)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    # `python -m clickstream.cli`: run the importable module's main, so that plugins raising
    # clickstream.cli.CLIError are caught (this file would otherwise be a second module)
    from clickstream.cli import main as _main

    sys.exit(_main())
