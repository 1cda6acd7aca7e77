"""Acceptance 2: on a real public log, GoAccess and AWStats figures under matched definitions.

Runs the real tools (Debian packages goaccess and awstats) via bench/compare_log_analyzers.py.
"""

from __future__ import annotations

from bench.compare_log_analyzers import compare
from tests.importer.importlog_helpers import SAMPLE

DAYS = ("2015-05-17", "2015-05-18")


def per_day(a: int, b: int) -> dict[str, int]:
    return dict(zip(DAYS, (a, b), strict=True))


def test_goaccess_and_awstats_agree_with_clickstream_on_the_real_log():
    rows = {what: (theirs, ours) for what, theirs, ours in compare(SAMPLE)}
    # GoAccess unique visitors (IP + date + UA, 4xx left out): equal
    assert rows["unique visitors/day  GoAccess vs Clickstream (IP+UA)"] == (
        per_day(12, 64),
        per_day(12, 64),
    )
    # AWStats visits (its pages, 200/304, visitor = host, 1 h timeout, midnight split) against the
    # sessionizer's fold with that timeout, no robot filter: equal
    assert rows["visits/day, no robot filter  AWStats vs Clickstream (visitor=IP)"] == (
        per_day(11, 52),
        per_day(11, 52),
    )
    # Clickstream's own visitor (IP + UA): Googlebot's IP 66.249.73.135 used three user agents on the 18th
    assert rows["visits/day, no robot filter  AWStats vs Clickstream (visitor=IP+UA)"][
        1
    ] == per_day(11, 54)
    # the same with AWStats' robot list applied to both sides: equal
    assert rows["visits/day, AWStats' robot list on both  AWStats vs Clickstream (visitor=IP)"] == (
        per_day(7, 24),
        per_day(7, 24),
    )
    # each side's own robot list: AWStats also counts feed readers, an empty UA and MSIE 6 as
    # robots; with Clickstream's (UA parser + crawler-user-agents list): equal on the 17th, +1 on the 18th
    theirs, ours = rows["visits/day, each side's robot list  AWStats vs Clickstream (visitor=IP)"]
    assert theirs == per_day(7, 24)
    assert ours == per_day(7, 25)
