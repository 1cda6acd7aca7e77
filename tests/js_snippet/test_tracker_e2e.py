"""End to end: real Chromium → `clickstream serve` (collector, Tansu, sessionizer, chDB) → rows.

One ``clickstream serve`` subprocess for the module; each test is one browser context, i.e. one
visitor, and reads back exactly that visitor's rows through ``POST /api/sql``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Served, start_serve
from tests.js_snippet.chromium import launch
from tests.js_snippet.recorder import Web

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# per-site overrides are `[site.<id>]` tables; the allow list (`sites`) goes in the environment
CONFIG = """
[site.strict]
respect_dnt = true
"""


def wait_hits(served: Served, where: str, count: int, timeout: float = 30) -> None:
    """Until the sessionizer wrote ``count`` hits matching ``where`` (open sessions too)."""
    deadline = time.monotonic() + timeout
    query = f"SELECT count() FROM clickstream.hits FINAL WHERE {where}"
    while (got := served.sql(query)[0][0]) < count:
        assert time.monotonic() < deadline, f"{got} of {count} hits for {where}"
        time.sleep(0.3)
    assert got == count, f"{got} hits for {where}, expected {count}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("serve")
    (data / "clickstream.toml").write_text(CONFIG)
    env = {
        "CLICKSTREAM_SITES": "shop,private,strict",
        "CLICKSTREAM_CONFIG": str(data / "clickstream.toml"),
    }
    served = start_serve(data / "data", env=env)
    try:
        yield served
    finally:
        try:
            code = served.stop()
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait()
            raise
        assert code == 0, served.log.read_text()[-3000:]


@pytest.fixture
def live(served: Served, servers: tuple[object, dict[str, str], str, str]) -> Iterator[Web]:
    recorder, pages, _, site_url = servers
    pages.clear()
    yield Web(served.url, site_url, recorder, pages)  # type: ignore[arg-type]


def visitor(context: object) -> str:
    cookies = {c["name"]: c["value"] for c in context.cookies()}  # type: ignore[attr-defined]
    return cookies["_cs_vid"]


def session(served: Served, vid: str, columns: str) -> list[object]:
    rows = served.sql(
        f"SELECT {columns} FROM clickstream.sessions FINAL WHERE visitor_id = '{vid}' AND is_closed"
    )
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("bfcache", [False, True], ids=["reloaded", "bfcache"])
def test_back_button_makes_a_back_loop_with_nav_back_forward(
    live: Web, served: Served, playwright: object, bfcache: bool
) -> None:
    browser = launch(playwright, bfcache=bfcache)
    try:
        context = browser.new_context()  # type: ignore[attr-defined]
        page = context.new_page()
        a = live.page("/a", "A", body='<a id=go href="/b">to B</a>')
        live.page("/b", "B")
        page.goto(a)
        vid = visitor(context)
        wait_hits(served, f"visitor_id = '{vid}'", 1)
        page.click("#go")
        wait_hits(served, f"visitor_id = '{vid}'", 2)
        page.go_back(wait_until="commit")
        wait_hits(served, f"visitor_id = '{vid}'", 3)
    finally:
        browser.close()  # type: ignore[attr-defined]
    served.flush()
    rows = served.sql(
        "SELECT page, nav, is_back_loop, is_quick_back, prev_page, next_page, seq, source "
        f"FROM clickstream.hits FINAL WHERE visitor_id = '{vid}' ORDER BY seq"
    )
    assert rows == [
        ["/a", "navigate", 0, 0, "", "/b", 1, "beacon"],
        ["/b", "navigate", 0, 0, "/a", "/a", 2, "beacon"],
        ["/a", "back_forward", 1, 1, "/b", "", 3, "beacon"],
    ]
    assert session(served, vid, "paths, back_loops, quick_backs, back_loop_paths, pageviews") == [
        ["/a", "/b", "/a"],
        1,
        1,
        ["/b"],
        3,
    ]


def test_search_with_zero_results_is_a_dead_end(live: Web, served: Served, context) -> None:
    url = live.page("/search", "Search", before="cs('search', 'unobtainium', 0);")
    page = context.new_page()
    page.goto(url + "?q=unobtainium")
    vid = visitor(context)
    wait_hits(served, f"visitor_id = '{vid}'", 1)
    served.flush()
    rows = served.sql(
        "SELECT event, page, search_query, search_results, is_dead_end_search "
        f"FROM clickstream.hits FINAL WHERE visitor_id = '{vid}'"
    )
    assert rows == [["search", "/search?q=unobtainium", "unobtainium", 0, 1]]
    assert session(served, vid, "searches, dead_end_searches, dead_end_terms") == [
        1,
        1,
        ["unobtainium"],
    ]


def test_spa_route_changes_are_pageviews(live: Web, served: Served, context) -> None:
    page = context.new_page()
    page.goto(live.page("/app", "App"))
    page.evaluate("history.pushState({}, '', '/app/cart')")
    page.evaluate("history.pushState({}, '', '/app/checkout?step=1')")
    vid = visitor(context)
    wait_hits(served, f"visitor_id = '{vid}'", 3)
    served.flush()
    rows = served.sql(
        "SELECT event, page, referrer, nav FROM clickstream.hits FINAL "
        f"WHERE visitor_id = '{vid}' ORDER BY seq"
    )
    base = live.site_url
    assert rows == [
        ["pageview", "/app", "", "navigate"],
        ["pageview", "/app/cart", f"{base}/app", "navigate"],
        ["pageview", "/app/checkout?step=1", f"{base}/app/cart", "navigate"],
    ]
    assert session(served, vid, "pageviews, entry_path, exit_path") == [
        3,
        "/app",
        "/app/checkout?step=1",
    ]


def test_events_queued_before_load_arrive(live: Web, served: Served, context) -> None:
    before = "cs('event', 'signup', {plan: 'pro', revenue: 49.5});"
    page = context.new_page()
    page.goto(live.page("/welcome", "Welcome", before=before))
    vid = visitor(context)
    wait_hits(served, f"visitor_id = '{vid}'", 2)
    served.flush()
    rows = served.sql(
        "SELECT event, page, props FROM clickstream.hits FINAL "
        f"WHERE visitor_id = '{vid}' ORDER BY seq"
    )
    assert rows == [
        ["pageview", "/welcome", {}],
        ["signup", "", {"plan": "pro", "revenue": "49.5"}],
    ]
    assert session(served, vid, "hits, pageviews, revenue") == [2, 1, 49.5]


def test_pagehide_event_arrives_by_beacon(live: Web, served: Served, context) -> None:
    before = "addEventListener('pagehide', () => cs('event', 'leave'));"
    page = context.new_page()
    page.goto(live.page("/a", "A", before=before))
    page.goto(live.page("/b", "B"))
    vid = visitor(context)
    wait_hits(served, f"visitor_id = '{vid}'", 3)
    served.flush()
    rows = served.sql(
        "SELECT event, url, source FROM clickstream.hits FINAL "
        f"WHERE visitor_id = '{vid}' ORDER BY seq"
    )
    assert rows == [
        ["pageview", f"{live.site_url}/a", "beacon"],
        ["leave", f"{live.site_url}/a", "beacon"],
        ["pageview", f"{live.site_url}/b", "beacon"],
    ]


def test_identify_links_the_visitor_to_the_crm_id(live: Web, served: Served, context) -> None:
    page = context.new_page()
    page.goto(live.page("/login", "Login"))
    vid = visitor(context)
    wait_hits(served, f"visitor_id = '{vid}'", 1)
    page.evaluate("cs('identify', 'crm-1001')")
    wait_hits(served, f"visitor_id = '{vid}'", 2)
    served.flush()
    assert served.sql(
        f"SELECT site, crm_id FROM clickstream.identities FINAL WHERE visitor_id = '{vid}'"
    ) == [["shop", "crm-1001"]]
    assert session(served, vid, "crm_id") == ["crm-1001"]


def test_dnt_and_gpc_are_respected_when_the_site_asks(live: Web, served: Served, browser) -> None:
    def visit(site: str, path: str, respect: bool, **ctx: object) -> str:
        context = browser.new_context(**ctx)
        try:
            context.add_init_script(
                "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"
            )
            live.pages[path] = live.page(path, path, respect_dnt=respect) and live.pages[path]
            live.pages[path] = live.pages[path].replace('data-site="shop"', f'data-site="{site}"')
            page = context.new_page()
            page.goto(live.site_url + path)
            page.evaluate("cs('event', 'clicked')")
            page.wait_for_timeout(300)
            return {c["name"]: c["value"] for c in context.cookies()}.get("_cs_vid", "")
        finally:
            context.close()

    # the page asks (data-respect-dnt): the tracker sends nothing and sets no cookie
    assert visit("private", "/p1", respect=True) == ""
    # the page does not ask, but the site's collector policy does: dropped at the door
    strict_vid = visit("strict", "/s1", respect=False, extra_http_headers={"Sec-GPC": "1"})
    assert strict_vid
    # neither asks: tracked
    control_vid = visit("private", "/p2", respect=False)
    wait_hits(served, f"visitor_id = '{control_vid}'", 2)
    assert served.sql(
        "SELECT site, count() FROM clickstream.hits FINAL "
        "WHERE site IN ('private', 'strict') GROUP BY site ORDER BY site"
    ) == [["private", 2]]
    metrics = httpx.get(served.url + "/metrics").text
    assert 'hits_dropped_total{reason="dnt"} 2' in metrics  # the pixel's reason, GPC here


def test_serve_answers_t_js_with_the_committed_build(served: Served) -> None:
    got = httpx.get(served.url + "/t.js")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/javascript")
    assert got.headers["cache-control"] == "public, max-age=3600"
    assert got.content == (ROOT / "collector" / "static" / "t.js").read_bytes()
