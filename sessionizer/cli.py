"""`clickstream resessionize`: rebuild a site's sessions from raw hits after rule changes."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable

from clickstream.settings import Settings

SITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_setting_flags: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = sub.add_parser(
        "resessionize",
        help="rebuild a site's sessions from the raw hits in ClickHouse (after changing session rules)",
        description="Re-split the sessions that start on the given UTC days from their stored hits, "
        "with the current settings (session_timeout_min, time zone/midnight split, caps, search_params).",
    )
    p.add_argument("--site", required=True, help="site id")
    p.add_argument(
        "--from", dest="day_from", required=True, metavar="YYYY-MM-DD", help="first day (UTC)"
    )
    p.add_argument(
        "--to", dest="day_to", required=True, metavar="YYYY-MM-DD", help="last day (UTC), inclusive"
    )
    p.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    add_setting_flags(p)
    p.set_defaults(handler=cmd_resessionize)


def _day(raw: str, flag: str) -> dt.date:
    from clickstream.cli import CLIError

    try:
        if not DAY_RE.match(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise CLIError(f"{flag} {raw!r} is not a date YYYY-MM-DD") from None


def cmd_resessionize(args: argparse.Namespace, settings: Settings) -> int:
    from clickstream import warehouse
    from clickstream.cli import CLIError
    from sessionizer.resessionize import resessionize

    if not SITE_RE.match(args.site):
        raise CLIError(f"--site {args.site!r} is not a site id (1-64 of A-Z a-z 0-9 . _ -)")
    day_from, day_to = _day(args.day_from, "--from"), _day(args.day_to, "--to")
    client = warehouse.connect(settings.clickhouse_dsn, settings.chdb_max_memory)
    warehouse.migrate(client, settings.database)
    try:
        s = resessionize(client, settings, args.site, day_from, day_to, dry_run=args.dry_run)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    verb = "would rebuild" if args.dry_run else "rebuilt"
    print(
        f"{verb} site {args.site} {day_from}..{day_to}: {s.hits} hits, sessions {s.sessions_before} -> "
        f"{s.sessions_after} ({s.deleted} deleted, {s.capped} cut by caps)"
    )
    return 0
