"""CLI commands of the identity graph and data rights: ``identify``, ``erase``, ``export``.

Each talks to a running ``clickstream serve`` through its admin API when ``--url`` is
given, or when no ``--clickhouse`` is given and a serve runs with this ``--data`` (token
from ``--api-token`` / ``CLICKSTREAM_API_TOKEN`` / ``<data>/api_token``), else directly
to ClickHouse (``--clickhouse`` DSN, default the data dir's chDB).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from clickstream.settings import Settings


def _cli_error(usage: bool = True) -> type[Exception]:
    """CLIError (exit 2) for what the user asked, CLIFailure (exit 1) for a failure while
    running (a server unreachable or refusing)."""
    from clickstream.cli import CLIError, CLIFailure

    return CLIError if usage else CLIFailure


def _token(settings: Settings) -> str:
    if settings.api_token and not settings.api_token.startswith("sha256:"):
        return str(settings.api_token)
    path = settings.data_dir / "api_token"
    return path.read_text().strip() if path.exists() else ""


def _call(
    url: str, settings: Settings, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    req = urllib.request.Request(
        url.rstrip("/") + path,
        method=method,
        data=orjson.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {_token(settings)}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = orjson.loads(exc.read()).get("error", "")
        except orjson.JSONDecodeError:
            message = exc.reason
        raise _cli_error(usage=exc.code == 400)(f"{exc.code}: {message}") from None
    except urllib.error.URLError as exc:
        raise _cli_error(usage=False)(f"cannot reach {url}: {exc.reason}") from None


def _url(args: argparse.Namespace, settings: Settings) -> str:
    """``--url``, else the serve running with this ``--data`` (unless ``--clickhouse``)."""
    from clickstream import running

    if args.url or settings.clickhouse:
        return str(args.url or "")
    info = running.find(settings.data_dir)
    return str(info["url"]) if info else ""


def _direct(settings: Settings, fn: Callable[..., Any], *args: Any) -> Any:
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from clickstream import warehouse
    from clickstream.identity import IdentityError

    client = warehouse.connect(settings.clickhouse_dsn)
    try:
        return fn(client, settings.database, *args)
    except IdentityError as exc:
        raise _cli_error()(str(exc)) from None
    except ClickHouseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _cli_error(usage=False)(
            f"ClickHouse at {settings.clickhouse_dsn}: {first} "
            "(no `clickstream serve` runs with this --data; give --url of one, "
            "or run `clickstream migrate` first)"
        ) from None


def _print(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def cmd_identify(args: argparse.Namespace, settings: Settings) -> int:
    from clickstream import identity

    actor = f"cli:{getpass.getuser()}"
    modes = [bool(args.visitor or args.crm), bool(args.merge or args.into), bool(args.undo)]
    fn: Callable[..., identity.Change]
    fargs: tuple[str, ...]
    if sum(modes) != 1:
        raise _cli_error()(
            "give --visitor V --crm C, or --merge FROM --into TO, or --undo CHANGE_ID"
        )
    if modes[0]:
        if not (args.visitor and args.crm):
            raise _cli_error()("linking needs both --visitor and --crm")
        body, path, fn, fargs = (
            {"site": args.site, "visitor_id": args.visitor, "crm_id": args.crm},
            "/api/identify",
            identity.link,
            (args.site, args.visitor, args.crm, actor),
        )
    elif modes[1]:
        if not (args.merge and args.into):
            raise _cli_error()("merging needs both --merge FROM and --into TO")
        body, path, fn, fargs = (
            {"site": args.site, "from_crm": args.merge, "into_crm": args.into},
            "/api/identify/merge",
            identity.merge,
            (args.site, args.merge, args.into, actor),
        )
    else:
        body, path, fn, fargs = (
            {"site": args.site, "change_id": args.undo},
            "/api/identify/undo",
            identity.undo,
            (args.site, args.undo, actor),
        )
    url = _url(args, settings)
    if url:
        _print(_call(url, settings, "POST", path, body))
    else:
        _print(_direct(settings, fn, *fargs).as_dict())
    return 0


def _person(args: argparse.Namespace) -> tuple[str, str]:
    if bool(args.visitor) == bool(args.crm):
        raise _cli_error()("give exactly one of --visitor ID or --crm ID")
    return args.visitor or "", args.crm or ""


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    from clickstream import erase

    visitor, crm = _person(args)
    url = _url(args, settings)
    if url:
        body = (
            {"site": args.site, "visitor_id": visitor}
            if visitor
            else {"site": args.site, "crm_id": crm}
        )
        result = _call(url, settings, "POST", "/api/erase", body)
    else:
        result = _direct(settings, erase.erase, args.site, visitor, crm, f"cli:{getpass.getuser()}")
    _print(result)
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from clickstream import erase

    visitor, crm = _person(args)
    url = _url(args, settings)
    if url:
        query = {"site": args.site, "visitor_id" if visitor else "crm_id": visitor or crm}
        doc = _call(url, settings, "GET", "/api/export?" + urllib.parse.urlencode(query))
    else:
        doc = _direct(settings, erase.export, args.site, visitor, crm)
    data = erase.export_json(doc)
    if args.out:
        Path(args.out).write_bytes(data + b"\n")
        n = sum(len(rows) for rows in doc["tables"].values())
        print(f"wrote {n} rows of {len(doc['visitor_ids'])} visitor ids to {args.out}")
    else:
        sys.stdout.write(data.decode() + "\n")
    return 0


def add_parser(sub: Any, add_setting_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    url_help = (
        "base URL of a running `clickstream serve` (default: the one running with "
        "--data; else ClickHouse directly)"
    )
    p = sub.add_parser(
        "identify", help="link a visitor id to a CRM id; merge CRM ids; undo a change"
    )
    p.add_argument("--site", required=True)
    p.add_argument("--visitor", help="visitor id to link")
    p.add_argument("--crm", help="CRM id to link it to")
    p.add_argument("--merge", metavar="FROM", help="CRM id to merge ...")
    p.add_argument("--into", metavar="TO", help="... into this CRM id")
    p.add_argument("--undo", metavar="CHANGE_ID", help="undo a link or merge (its change_id)")
    p.add_argument("--url", help=url_help)
    add_setting_flags(p)
    p.set_defaults(handler=cmd_identify)
    for name, text, handler in (
        (
            "erase",
            "delete every row of a visitor or a CRM id (and keep them erased on replay)",
            cmd_erase,
        ),
        ("export", "write every row of a visitor or a CRM id as JSON", cmd_export),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--site", required=True)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--visitor", help="visitor id")
        who.add_argument("--crm", help="CRM id (with its merged CRM ids and linked visitors)")
        if name == "export":
            p.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
        p.add_argument("--url", help=url_help)
        add_setting_flags(p)
        p.set_defaults(handler=handler)
