"""Clickstream's log import next to GoAccess and AWStats on the same real access log.

    python -m bench.compare_log_analyzers [LOG]     (default: tests/data/semicomplete_2015-05-17.log)

Each comparison uses one definition for both sides (printed with the figures):

1. Unique visitors per day, GoAccess's definition: IP + date + User-Agent, every request
   (static files included) except 4xx answers, which GoAccess leaves out of its unique
   count by default.  Clickstream: distinct ``visitor_id`` (hash of IP + UA) per UTC day
   over the hits the importer produces with the same filters.
2. Visits per day, AWStats' definition: pages (extension not in its NotPageList nor a
   download type of its lib/mime.pm; robots.txt is a robot's), status 200/304, visitor =
   host (IP), a new visit when a page comes more than 1 hour (its ``$VISITTIMEOUT``)
   after the visit's latest page, in file order, and at midnight (its hhmmss arithmetic
   makes any next-day page a new visit), counted on the day the visit starts.
   Clickstream: the sessionizer's own fold over the imported hits, in file order, with
   that timeout, per (IP, UTC day).  Printed with
   robot detection off on both sides (so the session rule is all that is compared), and
   with each side's own robot list, with the user agents they classify differently.
   Clickstream's own visitor (IP + UA) is printed too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from clickstream.hit import Hit
from importer.convert import Converter, Filters
from importer.formats import compile_format
from importer.run import iter_hits
from importer.stats import ImportStats

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LOG = ROOT / "tests" / "data" / "semicomplete_2015-05-17.log"
AWSTATS = "/usr/lib/cgi-bin/awstats.pl"
AWSTATS_NOT_PAGES = frozenset(
    [
        "css",
        "js",
        "class",
        "gif",
        "jpg",
        "jpeg",
        "png",
        "bmp",
        "ico",
        "rss",
        "xml",
        "swf",
        "eot",
        "woff",
        "woff2",
    ]
)
AWSTATS_METHODS = frozenset(
    [
        "GET",
        "POST",
        "HEAD",
        "PROPFIND",
        "CHECKOUT",
        "LOCK",
        "PROPPATCH",
        "OPTIONS",
        "MKACTIVITY",
        "PUT",
        "MERGE",
        "DELETE",
        "REPORT",
        "MKCOL",
        "COPY",
        "RPC_IN_DATA",
        "RPC_OUT_DATA",
        "OK",
        "ERR!",
        "PRIV",
    ]
)
AWSTATS_TIMEOUT_MS = 3600_000
DAY_MS = 86_400_000

GOACCESS_FILTERS = Filters(methods=None, statuses=((100, 399), (500, 599)), skip_static=False)
AWSTATS_MIME = Path("/usr/share/awstats/lib/mime.pm")


def awstats_not_pages() -> frozenset[str]:
    """AWStats' page rule: not in NotPageList, and not a MIME type it marks as a download
    ('d' in its lib/mime.pm: txt, pdf, zip, jar, ...)."""
    downloads = set()
    if AWSTATS_MIME.exists():
        for ext, kind in re.findall(
            r"^'([^']+)',\s*\[\s*'[^']*'\s*,\s*'([^']*)'\s*\]", AWSTATS_MIME.read_text(), re.M
        ):
            if kind not in ("", "p"):
                downloads.add(ext.lower())
    return AWSTATS_NOT_PAGES | downloads


def awstats_filters() -> Filters:
    return Filters(
        methods=AWSTATS_METHODS,
        statuses=((200, 200), (304, 304)),
        skip_static=True,
        static_extensions=awstats_not_pages(),
    )


def awstats_pages(log: Path) -> list[Hit]:
    """The hits AWStats counts as pages; it also takes any request for robots.txt as a robot's."""
    return [
        h
        for h in import_hits(log, awstats_filters())
        if not h.url.split("?")[0].endswith("robots.txt")
    ]


PerDay = dict[str, int]


def day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


# --- Clickstream side: the importer's own pipeline --------------------------------------


def import_hits(log: Path, filters: Filters) -> list[Hit]:
    stats = ImportStats()
    conv = Converter("compare", filters, ip_truncate=False)
    return list(iter_hits([str(log)], compile_format("combined"), conv, stats))


def unique_visitors_per_day(hits: Iterable[Hit]) -> PerDay:
    seen: dict[str, set[str]] = defaultdict(set)
    for h in hits:
        seen[day(h.ts)].add(h.visitor_id)
    return {d: len(v) for d, v in sorted(seen.items())}


def visits_per_day(
    hits: Iterable[Hit],
    timeout_ms: int,
    visitor: Callable[[Hit], str],
    split_at_midnight: bool = True,
) -> PerDay:
    """Sessions by start day, built by the sessionizer's own fold (sessionizer/sessions.py).

    Hits go in in file order, as they would arrive from Kafka.  ``visitor`` picks the
    visitor key; AWStats' split at midnight is the fold run per (visitor, UTC day).
    """
    from sessionizer import sessions
    from sessionizer.enrich import Enriched
    from sessionizer.flags import Rules

    rules = Rules(timeout_ms=timeout_ms)
    state = sessions.State(rules=lambda site: rules)
    results = []
    for h in hits:
        key = visitor(h) + (f"|{day(h.ts)}" if split_at_midnight else "")
        state, closed = sessions.fold(state, Enriched(hit=replace(h, visitor_id=key)))
        results.extend(closed)
    results.extend(sessions.close_all(state))
    out: dict[str, int] = defaultdict(int)
    for r in results:
        out[day(r.hits[0].hit.ts)] += 1
    return dict(sorted(out.items()))


def is_bot(user_agent: str) -> bool:
    """The live pipeline's classifier (sessionizer enrichment) when present."""
    try:
        from sessionizer.enrich import _ua
    except ImportError:  # before the sessionizer existed: the same library it uses
        from user_agents import parse

        low = user_agent.lower()
        return bool(parse(user_agent).is_bot) or any(w in low for w in ("bot", "crawler", "spider"))
    return bool(_ua(user_agent)[4])


# --- the other tools -------------------------------------------------------------------


def goaccess_visitors(log: Path) -> PerDay:
    exe = shutil.which("goaccess")
    if not exe:
        raise SystemExit("goaccess is not installed (Debian package goaccess)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        subprocess.run(
            [exe, str(log), "--log-format=COMBINED", "-o", str(out)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        data = json.loads(out.read_text())
    result = {}
    for row in data["visitors"]["data"]:
        d = row["data"]
        result[f"{d[:4]}-{d[4:6]}-{d[6:]}"] = int(row["visitors"]["count"])
    return dict(sorted(result.items()))


def awstats_visits(log: Path, robots: bool) -> tuple[PerDay, list[str]]:
    """Visits per day from AWStats' data file, and the robot names it saw."""
    if not Path(AWSTATS).exists():
        raise SystemExit(f"{AWSTATS} not found (Debian package awstats)")
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "awstats.cmp.conf"
        conf.write_text(
            f'LogFile="{log}"\nLogType=W\nLogFormat=1\nSiteDomain="example.org"\nDNSLookup=0\n'
            f'DirData="{tmp}"\nDirIcons="/icon"\nNotPageList="{" ".join(sorted(AWSTATS_NOT_PAGES))}"\n'
            f'ValidHTTPCodes="200 304"\nLevelForRobotsDetection={2 if robots else 0}\n'
        )
        subprocess.run(
            ["perl", AWSTATS, "-config=cmp", f"-configdir={tmp}", "-update"],
            check=True,
            capture_output=True,
            timeout=300,
        )
        visits: PerDay = {}
        robot_names: list[str] = []
        for data_file in sorted(Path(tmp).glob("awstats*.cmp.txt")):
            section = ""
            for line in data_file.read_text(errors="replace").splitlines():
                if line.startswith("BEGIN_"):
                    section = line.split()[0]
                elif line.startswith("END_"):
                    section = ""
                elif section == "BEGIN_DAY":
                    date, _pages, _hits, _bytes, n = line.split()
                    visits[f"{date[:4]}-{date[4:6]}-{date[6:]}"] = int(n)
                elif section == "BEGIN_ROBOT":
                    robot_names.append(line.split()[0])
    return dict(sorted(visits.items())), robot_names


# --- the comparison --------------------------------------------------------------------


def compare(log: Path) -> list[tuple[str, PerDay, PerDay]]:
    """(what, other tool, clickstream) rows; the test asserts the matched ones are equal."""
    rows = []
    ga_hits = import_hits(log, GOACCESS_FILTERS)
    rows.append(
        (
            "unique visitors/day  GoAccess vs Clickstream (IP+UA)",
            goaccess_visitors(log),
            unique_visitors_per_day(ga_hits),
        )
    )
    pages = awstats_pages(log)
    aw_all, _ = awstats_visits(log, robots=False)
    rows.append(
        (
            "visits/day, no robot filter  AWStats vs Clickstream (visitor=IP)",
            aw_all,
            visits_per_day(pages, AWSTATS_TIMEOUT_MS, lambda h: h.ip),
        )
    )
    rows.append(
        (
            "visits/day, no robot filter  AWStats vs Clickstream (visitor=IP+UA)",
            aw_all,
            visits_per_day(pages, AWSTATS_TIMEOUT_MS, lambda h: h.visitor_id),
        )
    )
    aw_humans, robots = awstats_visits(log, robots=True)
    humans = [h for h in pages if not is_bot(h.user_agent)]
    rows.append(
        (
            "visits/day, each side's robot list  AWStats vs Clickstream (visitor=IP)",
            aw_humans,
            visits_per_day(humans, AWSTATS_TIMEOUT_MS, lambda h: h.ip),
        )
    )
    aw_bot = awstats_robot_matcher(robots)
    rows.append(
        (
            "visits/day, AWStats' robot list on both  AWStats vs Clickstream (visitor=IP)",
            aw_humans,
            visits_per_day(
                [h for h in pages if not aw_bot(h.user_agent)], AWSTATS_TIMEOUT_MS, lambda h: h.ip
            ),
        )
    )
    return rows


def awstats_robot_matcher(robot_ids: list[str]) -> Callable[[str], bool]:
    """AWStats' robot ids are its (case-insensitive) regexes; 'no_user_agent' is an empty UA."""
    patterns = [re.compile(r, re.I) for r in robot_ids if r != "no_user_agent"]

    def matches(user_agent: str) -> bool:
        return not user_agent or any(p.search(user_agent) for p in patterns)

    return matches


def main(argv: list[str] | None = None) -> int:
    from bench.common import figure

    argv = sys.argv[1:] if argv is None else argv
    log = Path(argv[0]).resolve() if argv else DEFAULT_LOG
    print(f"log: {log}")
    for n, (what, theirs, ours) in enumerate(compare(log), 1):
        days = sorted(set(theirs) | set(ours))
        verdict = "agree" if theirs == ours else "DIFFER"
        print(f"\n{what}: {verdict}")
        for d in days:
            print(f"  {d}  {theirs.get(d, 0):>6}  {ours.get(d, 0):>6}")
        print(f"  total       {sum(theirs.values()):>6}  {sum(ours.values()):>6}")
        figure(
            f"log_compare_{n}_other_total", sum(theirs.values()), "", what.split("  ")[0], digits=0
        )
        figure(
            f"log_compare_{n}_clickstream_total",
            sum(ours.values()),
            "",
            what.split("  ")[0],
            digits=0,
        )
    pages = awstats_pages(log)
    _, robots = awstats_visits(log, robots=True)
    aw_bot = awstats_robot_matcher(robots)
    differ = sorted({h.user_agent for h in pages if aw_bot(h.user_agent) != is_bot(h.user_agent)})
    print(f"\nAWStats robots seen: {', '.join(robots)}")
    print(
        "user agents of pages the two robot lists classify differently (AWStats robot? / Clickstream bot?):"
    )
    for ua in differ:
        print(f"  {aw_bot(ua)!s:5} {is_bot(ua)!s:5}  {ua[:90] or '(empty)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
