"""The tracker in real Chromium: pageviews, navigation types, SPA routes, search.

Each test asserts the exact hits the browser sent to the recording collector; every
hit is checked against the parameter contract by ``js_hitcheck.stable``.
"""

from __future__ import annotations

import pytest

from tests.js_snippet.chromium import launch
from tests.js_snippet.hitcheck import stable

pytestmark = pytest.mark.browser

BEACON = "text/plain;charset=UTF-8"


def test_pageview_is_one_beacon_with_the_page_url_title_and_referrer(web, context) -> None:
    url = web.page("/a", "Page A")
    page = context.new_page()
    page.goto(url, referer="https://search.example/?q=x")
    sent = web.recorder.wait(1)
    assert [(s.kind, s.content_type) for s in sent] == [("beacon", BEACON)]
    assert stable(sent[0].params) == {
        "s": "shop",
        "e": "pageview",
        "u": url,
        "t": "Page A",
        "r": "https://search.example/?q=x",
        "nav": "navigate",
    }


def test_visitor_id_is_a_first_party_cookie_kept_across_pages(web, context) -> None:
    a, b = web.page("/a", "A"), web.page("/b", "B")
    page = context.new_page()
    page.goto(a)
    page.goto(b)
    sent = web.recorder.wait(2)
    assert len(sent) == 2
    vid = sent[0].params["vid"]
    assert sent[1].params["vid"] == vid
    cookies = {c["name"]: c for c in context.cookies(web.site_url)}
    assert cookies["_cs_vid"]["value"] == vid
    assert cookies["_cs_vid"]["sameSite"] == "Lax"
    assert cookies["_cs_vid"]["expires"] - sent[1].params["cts"] / 1000 == pytest.approx(
        34560000, abs=5
    )


def test_reload_is_nav_reload(web, context) -> None:
    page = context.new_page()
    page.goto(web.page("/a", "A"))
    page.reload()
    sent = web.recorder.wait(2)
    assert [s.params["nav"] for s in sent] == ["navigate", "reload"]


def test_back_button_without_bfcache_is_back_forward_from_navigation_timing(web, context) -> None:
    a = web.page("/a", "A", body='<a id=go href="/b">to B</a>')
    b = web.page("/b", "B")
    page = context.new_page()
    page.goto(a)
    web.recorder.wait(1)
    page.click("#go")
    page.wait_for_url(b)
    web.recorder.wait(2)
    page.go_back()
    sent = web.recorder.wait(3)
    assert [(stable(s.params)["u"], s.params["nav"], s.params.get("r")) for s in sent] == [
        (a, "navigate", None),
        (b, "navigate", a),
        (a, "back_forward", None),
    ]


def test_back_button_from_bfcache_sends_back_forward_on_pageshow(web, playwright) -> None:
    browser = launch(playwright, bfcache=True)
    try:
        page = browser.new_page()
        a = web.page("/a", "A", body='<a id=go href="/b">to B</a>')
        b = web.page("/b", "B")
        page.goto(a)
        page.evaluate("window.marker = 42")  # survives only if the page comes from bfcache
        web.recorder.wait(1)
        page.click("#go")
        page.wait_for_url(b)
        web.recorder.wait(2)
        page.go_back(wait_until="commit")  # a bfcache restore fires no load event
        sent = web.recorder.wait(3)
        assert page.evaluate("window.marker") == 42
        assert [(stable(s.params)["u"], s.params["nav"]) for s in sent] == [
            (a, "navigate"),
            (b, "navigate"),
            (a, "back_forward"),
        ]
        assert sent[2].params["cts"] > sent[0].params["cts"]
    finally:
        browser.close()


def test_spa_route_changes_are_pageviews_with_the_previous_url_as_referrer(web, context) -> None:
    url = web.page("/app", "App")
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    page.evaluate("history.pushState({}, '', '/app/cart')")
    page.evaluate("history.replaceState({}, '', '/app/cart')")  # same URL: no hit
    page.evaluate("history.replaceState({}, '', '/app/cart?step=2')")
    web.recorder.wait(3)
    page.go_back()
    web.recorder.wait(4)
    page.evaluate("location.hash = '#/help'")
    sent = web.recorder.wait(5)
    base = web.site_url
    assert [(s.params["e"], s.params["u"], s.params.get("r"), s.params["nav"]) for s in sent] == [
        ("pageview", f"{base}/app", None, "navigate"),
        ("pageview", f"{base}/app/cart", f"{base}/app", "navigate"),
        ("pageview", f"{base}/app/cart?step=2", f"{base}/app/cart", "navigate"),
        ("pageview", f"{base}/app", f"{base}/app/cart?step=2", "back_forward"),
        ("pageview", f"{base}/app#/help", f"{base}/app", "navigate"),
    ]
    for s in sent:
        stable(s.params)


def test_an_in_page_anchor_is_not_a_new_page_view_but_a_hash_route_is(web, context) -> None:
    """A table-of-contents link (#install) and the back button to the top made two more
    pageviews of the same page (and no bounce), unlike Plausible; #/route and #!/route
    (hash routers) are pages."""
    url = web.page(
        "/guide",
        "Guide",
        body='<a id="toc" href="#install">Install</a>'
        '<div style="height:3000px"></div><h2 id="install">Install</h2>',
    )
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    page.click("#toc")
    page.go_back()
    page.evaluate("location.hash = '#faq'")
    page.evaluate("history.pushState({}, '', '/guide#top')")  # only the anchor moved: no page
    assert len(web.recorder.wait(2, timeout=1.5)) == 1
    page.evaluate("location.hash = '#/help'")
    page.evaluate("location.hash = '#!/cart'")
    sent = web.recorder.wait(3)
    assert [(s.params["u"], s.params["nav"]) for s in sent] == [
        (url, "navigate"),
        (url + "#/help", "navigate"),
        (url + "#!/cart", "navigate"),
    ]
    assert len(web.recorder.wait(4, timeout=1.0)) == 3
    for s in sent:
        stable(s.params)


def test_the_sites_own_search_parameters_decide_which_url_is_a_search(web, context) -> None:
    """A site with search_params = "find": ?find= is a search, ?s= (its sort order) is not;
    the tracker's built-in list made ?s=price a search hit (a false dead-end search)."""
    page = context.new_page()
    page.goto(web.page("/list", "List", search_params="find"))
    page.evaluate("history.pushState({}, '', '/list?s=price')")
    page.evaluate("history.pushState({}, '', '/list?find=boots')")
    sent = web.recorder.wait(3)
    assert [(s.params["e"], s.params.get("q")) for s in sent] == [
        ("pageview", None),
        ("pageview", None),
        ("search", "boots"),
    ]


def test_search_url_parameter_makes_the_page_a_search(web, context) -> None:
    url = web.page("/find", "Results")
    page = context.new_page()
    page.goto(url + "?keyword=red+shoes&utm_source=news&utm_medium=email&page=2")
    sent = web.recorder.wait(1)
    assert stable(sent[0].params) == {
        "s": "shop",
        "e": "search",
        "q": "red shoes",
        "u": url + "?keyword=red+shoes&utm_source=news&utm_medium=email&page=2",
        "t": "Results",
        "nav": "navigate",
        "utm_source": "news",
        "utm_medium": "email",
    }


def test_search_with_result_count_before_load_shapes_the_first_hit(web, context) -> None:
    url = web.page("/find", "Results", before="cs('search', 'zzzz', 0);")
    page = context.new_page()
    page.goto(url + "?q=zzzz")
    sent = web.recorder.wait(1)
    assert len(sent) == 1
    assert stable(sent[0].params) == {
        "s": "shop",
        "e": "search",
        "q": "zzzz",
        "n": 0,
        "u": url + "?q=zzzz",
        "t": "Results",
        "nav": "navigate",
    }


def test_search_after_load_is_its_own_search_hit(web, context) -> None:
    url = web.page("/app", "App")
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    page.evaluate("cs('search', 'blue hat', 7)")
    sent = web.recorder.wait(2)
    assert stable(sent[1].params) == {
        "s": "shop",
        "e": "search",
        "q": "blue hat",
        "n": 7,
        "u": url,
        "t": "App",
        "nav": "navigate",
    }


def test_a_static_pixel_is_not_requested_again_on_back_but_the_tracker_is(web, context) -> None:
    """The browser fact behind the tracker's design (DESIGN.md, GET /t.js)."""
    from collector.snippet import snippet

    pixel = snippet("bare", web.collector_url)["pixel"]
    a = web.raw("/a", f"<title>A</title>{pixel}<a id=go href='/b'>B</a>")
    b = web.raw("/b", f"<title>B</title>{snippet('bare', web.collector_url)['pixel']}")
    web.page("/c", "C", body="<a id=go href='/d'>D</a>")
    web.page("/d", "D")
    page = context.new_page()
    page.goto(a)
    web.recorder.wait(1)
    page.click("#go")
    page.wait_for_url(b)
    web.recorder.wait(2)
    page.go_back()
    page.wait_for_load_state("load")
    static = web.recorder.wait(3, timeout=2)
    assert [(s.kind, s.referer) for s in static] == [("pixel", a), ("pixel", b)]
    web.recorder.clear()
    page.goto(web.site_url + "/c")
    web.recorder.wait(1)
    page.click("#go")
    web.recorder.wait(2)
    page.go_back()
    tracked = web.recorder.wait(3)
    assert [s.params["nav"] for s in tracked] == ["navigate", "navigate", "back_forward"]


def test_a_prerendered_page_counts_only_when_activated(web, context) -> None:
    context.add_init_script(
        "window.__pre = true;"
        "Object.defineProperty(Document.prototype, 'prerendering', {get: () => window.__pre})"
    )
    url = web.page("/a", "A")
    page = context.new_page()
    page.goto(url)
    page.evaluate("cs('event', 'early')")
    assert web.recorder.wait(1, timeout=0.5) == []
    page.evaluate("window.__pre = false; document.dispatchEvent(new Event('prerenderingchange'))")
    sent = web.recorder.wait(2)
    assert [(s.kind, s.params["e"]) for s in sent] == [("batch", "pageview"), ("batch", "early")]


def test_spa_back_without_the_navigation_api_falls_back_to_popstate(web, context) -> None:
    context.add_init_script("Object.defineProperty(window, 'navigation', {value: undefined})")
    url = web.page("/app", "App")
    page = context.new_page()
    page.goto(url)
    page.evaluate("history.pushState({}, '', '/app/cart')")
    web.recorder.wait(2)
    page.go_back()
    sent = web.recorder.wait(3)
    assert page.evaluate("window.navigation") is None
    assert [(s.params["u"], s.params["nav"]) for s in sent] == [
        (url, "navigate"),
        (url + "/cart", "navigate"),
        (url, "back_forward"),
    ]


@pytest.mark.parametrize("navigation_api", [True, False], ids=["navigation-api", "popstate"])
def test_a_new_hash_route_is_navigate_and_only_back_is_back_forward(
    web, context, navigation_api: bool
) -> None:
    # popstate fires for every fragment navigation, not only for history traversals: the
    # fallback must not call a hash-route link or `location.hash = …` a back-button use
    if not navigation_api:
        context.add_init_script("Object.defineProperty(window, 'navigation', {value: undefined})")
    url = web.page("/app", "App", body='<a id=cart href="#/cart">cart</a>')
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    page.click("#cart")
    web.recorder.wait(2)
    page.evaluate("location.hash = '#/checkout'")
    web.recorder.wait(3)
    page.go_back()
    sent = web.recorder.wait(4)
    assert (page.evaluate("window.navigation") is None) is not navigation_api
    assert [(stable(s.params)["u"], s.params["nav"]) for s in sent] == [
        (url, "navigate"),
        (url + "#/cart", "navigate"),
        (url + "#/checkout", "navigate"),
        (url + "#/cart", "back_forward"),
    ]


def test_popstate_fallback_after_a_bfcache_restore_is_still_back_forward(web, playwright) -> None:
    # the popstate fallback counts history entries: a page restored from the back-forward
    # cache must not compare with the count from before the visitor left it
    browser = launch(playwright, bfcache=True)
    try:
        context = browser.new_context()
        context.add_init_script("Object.defineProperty(window, 'navigation', {value: undefined})")
        page = context.new_page()
        url = web.page("/app", "App")
        other = web.page("/other", "Other")
        page.goto(url)
        page.evaluate("window.marker = 42; history.pushState({}, '', '/app?step=2')")
        web.recorder.wait(2)
        page.goto(other)
        web.recorder.wait(3)
        page.go_back(wait_until="commit")  # /app?step=2 from the back-forward cache
        web.recorder.wait(4)
        assert page.evaluate("window.marker") == 42
        page.go_back(wait_until="commit")  # within the restored page: popstate
        sent = web.recorder.wait(5)
        assert [(stable(s.params)["u"], s.params["nav"]) for s in sent] == [
            (url, "navigate"),
            (url + "?step=2", "navigate"),
            (other, "navigate"),
            (url + "?step=2", "back_forward"),
            (url, "back_forward"),
        ]
    finally:
        browser.close()
