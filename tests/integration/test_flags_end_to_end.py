"""Search and back-loop flags end to end: pixel hits with event times into `serve`
(real Tansu, real chDB), read back from `sessions` and the reports, against figures
worked out by hand from DESIGN.md's definitions."""

from __future__ import annotations

import datetime as dt
import time

import httpx

from tests.conftest import Served
from tests.integration.test_pipeline import wait_for

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
SITE = "flags"

# (visitor, seconds after t0, path, extra pixel parameters)
HITS: list[tuple[str, int, str, dict[str, str]]] = [
    # pogo-stick, then left from the results: one search, a result opened, no dead end
    ("vflags-pogo", 0, "/search?q=lamp", {"n": "4"}),
    ("vflags-pogo", 20, "/p1", {}),
    ("vflags-pogo", 40, "/search?q=lamp", {"n": "4", "nav": "back_forward"}),
    # results page 2 of the same term, then a result: two searches, no dead end
    ("vflags-page", 0, "/search?q=shoes", {"n": "5"}),
    ("vflags-page", 20, "/search?q=shoes&page=2", {"n": "5"}),
    ("vflags-page", 40, "/p1", {}),
    # 0 results: a dead end, and the next page is no result opened
    ("vflags-zero", 0, "/results", {"e": "search", "q": "zzz", "n": "0"}),
    ("vflags-zero", 20, "/p1", {}),
    # A B A B A: three back-loops, a back-looping session
    *[("vflags-loop", 20 * i, p, {}) for i, p in enumerate(["/a", "/b", "/a", "/b", "/a"])],
]


def test_search_and_back_loop_flags_match_the_definitions_and_the_reports(serve: Served) -> None:
    t0 = int(time.time() * 1000) - 3_600_000
    with httpx.Client(base_url=serve.url, headers={"User-Agent": UA}) as browser:
        for vid, t, path, extra in HITS:
            params = {"s": SITE, "vid": vid, "u": "https://shop.example" + path}
            params |= {"cts": str(t0 + t * 1000), "sts": str(int(time.time() * 1000)), **extra}
            browser.cookies.clear()  # one browser per visitor: the vid given is the visitor
            assert browser.get("/p.gif", params=params).status_code == 200
    count = f"SELECT count() FROM clickstream.hits FINAL WHERE site = '{SITE}'"
    assert wait_for(lambda: serve.sql(count)[0][0] == len(HITS))
    serve.flush()
    rows = serve.sql(
        "SELECT visitor_id, searches, dead_end_searches, dead_end_terms, search_results_opened,"
        " pogo_sticks, back_loops, is_back_looping, is_closed FROM clickstream.sessions FINAL"
        f" WHERE site = '{SITE}' ORDER BY visitor_id"
    )
    assert rows == [
        ["vflags-loop", 0, 0, [], 0, 0, 3, 1, 1],
        ["vflags-page", 2, 0, [], 1, 0, 0, 0, 1],
        ["vflags-pogo", 1, 0, [], 1, 1, 1, 0, 1],
        ["vflags-zero", 1, 1, ["zzz"], 0, 0, 0, 0, 1],
    ]
    day = dt.datetime.fromtimestamp(t0 / 1000, dt.UTC).date().isoformat()
    span = {"site": SITE, "from": day, "to": day}
    searches = httpx.get(f"{serve.url}/api/reports/searches", params=span, timeout=60).json()
    totals = searches["totals"]
    # the report and the sessions table count the same searches and dead ends
    assert (totals["searches"], totals["dead_ends"]) == (
        sum(r[1] for r in rows),
        sum(r[2] for r in rows),
    )
    assert (totals["zero_results"], totals["exits"], totals["pogo_sticks"]) == (1, 0, 1)
    shoes = next(t for t in searches["terms"] if t["term"] == "shoes")
    assert (shoes["searches"], shoes["dead_ends"], shoes["success_rate"]) == (2, 0, 1.0)
    loops = httpx.get(f"{serve.url}/api/reports/backloops", params=span, timeout=60).json()
    assert loops["totals"] | {"back_looping_share": 0, "back_loop_share": 0} == {
        "sessions": 4,
        "sessions_with_back_loops": 2,  # the pogo-stick is a back-loop onto the results
        "back_looping_sessions": 1,
        "back_loops": 4,
        "quick_backs": 0,
        "back_looping_share": 0,
        "back_loop_share": 0,
    }
