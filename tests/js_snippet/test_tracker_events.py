"""The tracker in real Chromium: queued calls, events, identify, clicks, transports, privacy."""

from __future__ import annotations

import pytest

from tests.js_snippet.chromium import launch
from tests.js_snippet.hitcheck import stable

pytestmark = pytest.mark.browser


def test_calls_queued_before_load_arrive_after_the_pageview_with_their_own_time(
    web, context
) -> None:
    before = (
        "cs('event', 'signup', {plan: 'pro', seats: 3});"
        "cs('identify', 'crm-42');"
        "window.queuedAt = Date.now();"
    )
    url = web.page("/a", "A", before=before)
    page = context.new_page()
    page.goto(url)
    sent = web.recorder.wait(2)
    queued_at = page.evaluate("window.queuedAt")
    assert [stable(s.params) for s in sent] == [
        {"s": "shop", "e": "pageview", "u": url, "t": "A", "nav": "navigate", "uid": "crm-42"},
        {"s": "shop", "e": "signup", "u": url, "uid": "crm-42", "x_plan": "pro", "x_seats": "3"},
    ]
    # one request, the page first: the queued call's time made strictly later by 1 ms
    assert [s.kind for s in sent] == ["batch", "batch"]
    assert sent[0].params["cts"] + 1 == sent[1].params["cts"] <= queued_at + 1
    assert sent[0].params["sts"] == sent[1].params["sts"] >= queued_at


def test_identify_after_load_sends_an_identify_hit_and_tags_later_hits(web, context) -> None:
    url = web.page("/a", "A")
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    page.evaluate("cs('identify', 'crm-7'); cs('event', 'buy', {revenue: 19.5})")
    sent = web.recorder.wait(3)
    assert [stable(s.params) for s in sent[1:]] == [
        {"s": "shop", "e": "identify", "u": url, "uid": "crm-7"},
        {"s": "shop", "e": "buy", "u": url, "uid": "crm-7", "x_revenue": "19.5"},
    ]
    assert sent[0].params["vid"] == sent[1].params["vid"] == sent[2].params["vid"]


def test_a_burst_faster_than_the_clock_keeps_every_send_time_at_or_after_its_hit(
    web, context
) -> None:
    # 30 events in one tick: cts runs ahead of Date.now() by up to 30 ms, and a send
    # time before its hit's cts would make the collector ignore the client offset
    url = web.page("/a", "A")
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    page.evaluate("for (let i = 0; i < 30; i++) cs('event', 'tick', {i: i})")
    # a burst may go out as several requests that race each other: order by hit time
    sent = sorted(web.recorder.wait(31, settle=0.5)[1:], key=lambda s: s.params["cts"])
    assert [stable(s.params)["x_i"] for s in sent] == [str(i) for i in range(30)]
    cts = [s.params["cts"] for s in sent]
    assert cts == sorted(set(cts)) and cts[-1] - cts[0] >= 29
    assert all(s.params["sts"] >= s.params["cts"] for s in sent)


def test_bad_calls_are_dropped_or_cut_to_the_limits(web, context) -> None:
    url = web.page("/a", "A")
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    page.evaluate(
        """() => {
        cs('event');                       // no name: dropped
        cs('no-such-command', 1);          // unknown: ignored
        cs('event', '');                   // empty name: dropped
        const props = {};
        for (let i = 0; i < 40; i++) props['p' + i] = 'v'.repeat(600);
        cs('event', 'e'.repeat(300), props);
        cs('event', 'Sign up!', {'plan name': 'pro', 'ok.key-1': true});
        cs('identify', '');                // empty id: dropped
        cs('search', 'a\u0000b', 'many');  // NUL removed, a count that is not one: none
        cs('search', 'c', -1);
        cs('search', 'd', 2.5);
        cs('search', 'e', '12');
    }"""
    )
    sent = web.recorder.wait(7, settle=0.5)
    assert len(sent) == 7
    assert [(s.params["q"], s.params.get("n")) for s in sent[3:]] == [
        ("ab", None),
        ("c", None),
        ("d", None),
        ("e", 12),
    ]
    assert "uid" not in sent[2].params
    big = stable(sent[1].params)
    assert big["e"] == "e" * 64
    assert sorted(k for k in big if k.startswith("x_")) == sorted(f"x_p{i}" for i in range(30))
    assert {len(str(v)) for k, v in big.items() if k.startswith("x_")} == {500}
    assert stable(sent[2].params) == {
        "s": "shop",
        "e": "Sign_up_",
        "u": url,
        "x_plan_name": "pro",
        "x_ok.key-1": "true",
    }


def test_loading_the_tracker_twice_sends_one_pageview(web, context) -> None:
    url = web.page("/a", "A")
    html = web.pages["/a"].replace(
        "</body>", f'<script src="{web.collector_url}/t.js" data-site="shop"></script></body>'
    )
    web.raw("/a", html)
    page = context.new_page()
    page.goto(url)
    page.wait_for_load_state("load")
    sent = web.recorder.wait(1, settle=0.5)
    assert [s.params["e"] for s in sent] == ["pageview"]


def test_outbound_and_download_clicks(web, context) -> None:
    body = (
        '<a id=out href="https://partner.example/deal">partner</a>'
        '<a id=pdf href="/files/price-list.pdf">prices</a>'
        '<a id=dl href="/export?id=3" download><span id=inner>export</span></a>'
        '<a id=local href="/b">local</a>'
    )
    url = web.page("/a", "A", body=body)
    web.page("/b", "B")
    context.route("https://partner.example/**", lambda route: route.fulfill(body="ok"))
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    page.click("#pdf", modifiers=["Control"])  # new tab: this page stays
    page.click("#inner", modifiers=["Control"])
    page.click("#out")
    page.wait_for_url("https://partner.example/deal")
    sent = web.recorder.wait(4)
    base = web.site_url
    assert [stable(s.params) for s in sent[1:]] == [
        {"s": "shop", "e": "download", "u": url, "x_url": f"{base}/files/price-list.pdf"},
        {"s": "shop", "e": "download", "u": url, "x_url": f"{base}/export?id=3"},
        {"s": "shop", "e": "outbound", "u": url, "x_url": "https://partner.example/deal"},
    ]


def test_hits_sent_on_pagehide_arrive_by_sendbeacon(web, context) -> None:
    before = "addEventListener('pagehide', () => cs('event', 'leave', {where: location.pathname}));"
    a = web.page("/a", "A", before=before)
    b = web.page("/b", "B")
    page = context.new_page()
    page.goto(a)
    web.recorder.wait(1)
    page.goto(b)
    sent = web.recorder.wait(3)
    assert [(s.kind, s.params["e"], s.params["u"]) for s in sent] == [
        ("beacon", "pageview", a),
        ("beacon", "leave", a),
        ("beacon", "pageview", b),
    ]
    assert sent[1].content_type == "text/plain;charset=UTF-8"
    assert stable(sent[1].params)["x_where"] == "/a"


def test_without_sendbeacon_the_image_pixel_carries_the_same_hit(web, context) -> None:
    context.add_init_script("delete Navigator.prototype.sendBeacon")
    url = web.page("/a", "A")
    page = context.new_page()
    page.goto(url + "?utm_campaign=spring")
    sent = web.recorder.wait(1)
    assert sent[0].kind == "pixel"
    assert stable(sent[0].params) == {
        "s": "shop",
        "e": "pageview",
        "u": url + "?utm_campaign=spring",
        "t": "A",
        "nav": "navigate",
        "utm_campaign": "spring",
    }
    # cross-origin: the Referer carries only the origin, hence `u`
    assert sent[0].referer == web.site_url + "/"


def test_offline_hits_wait_in_localstorage_and_leave_as_one_batch(web, context) -> None:
    url = web.page("/a", "A")
    page = context.new_page()
    page.goto(url)
    web.recorder.wait(1)
    context.set_offline(True)
    page.evaluate("cs('event', 'one'); cs('event', 'two')")
    assert page.evaluate("JSON.parse(localStorage._cs_q).map(h => h.e)") == ["one", "two"]
    assert len(web.recorder.wait(1, settle=0.3)) == 1
    context.set_offline(False)
    sent = web.recorder.wait(3)
    assert [(s.kind, s.params["e"]) for s in sent] == [
        ("beacon", "pageview"),
        ("batch", "one"),
        ("batch", "two"),
    ]
    assert sent[1].params["sts"] == sent[2].params["sts"] > sent[2].params["cts"]
    assert page.evaluate("localStorage._cs_q") == "[]"
    for s in sent:
        stable(s.params)


def test_retry_queue_keeps_only_the_20_newest_hits(web, context) -> None:
    page = context.new_page()
    page.goto(web.page("/a", "A"))
    web.recorder.wait(1)
    context.set_offline(True)
    page.evaluate("for (let i = 0; i < 25; i++) cs('event', 'e' + i)")
    queued = page.evaluate("JSON.parse(localStorage._cs_q).map(h => h.e)")
    assert queued == [f"e{i}" for i in range(5, 25)]
    # the queue would leave at the context's pagehide, after this test: into the next one's recorder
    page.evaluate("localStorage.removeItem('_cs_q')")


@pytest.mark.parametrize(
    ("init", "respect", "hits"),
    [
        ("Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})", True, 0),
        (
            "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
            True,
            0,
        ),
        ("document.cookie = '_cs_optout=1; path=/'", False, 0),
        ("Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})", False, 1),
        ("", True, 1),
    ],
    ids=["dnt-respected", "gpc-respected", "optout-cookie", "dnt-ignored-by-site", "no-signal"],
)
def test_dnt_gpc_and_optout(web, context, init: str, respect: bool, hits: int) -> None:
    if init:
        context.add_init_script(init)
    url = web.page("/a", "A", before="cs('event', 'queued');", respect_dnt=respect)
    page = context.new_page()
    page.goto(url)
    page.evaluate("cs('event', 'later')")
    sent = web.recorder.wait(hits * 3, settle=0.5)
    assert len(sent) == hits * 3
    names = {c["name"] for c in context.cookies(web.site_url)}
    assert ("_cs_vid" in names) is bool(hits)


def test_opting_out_while_the_page_is_open_stops_every_later_hit(web, playwright) -> None:
    # the README: a first-party _cs_optout=1 cookie always stops the tracker, also when the
    # visitor opts out after the page loaded (a consent dialog, an SPA, a bfcache restore)
    browser = launch(playwright, bfcache=True)
    try:
        context = browser.new_context()
        page = context.new_page()
        a = web.page("/a", "A", body='<a id=go href="/b">to B</a>')
        b = web.page("/b", "B")
        page.goto(a)
        page.evaluate("window.marker = 42")
        context.set_offline(True)
        page.evaluate("cs('event', 'queued_offline')")
        context.set_offline(False)
        sent = web.recorder.wait(2)
        assert [(stable(s.params)["u"], s.params["e"]) for s in sent] == [
            (a, "pageview"),
            (a, "queued_offline"),
        ]
        page.click("#go")
        page.wait_for_url(b)
        web.recorder.wait(3)
        page.evaluate("document.cookie = '_cs_optout=1; path=/'")
        context.set_offline(True)
        page.evaluate("cs('event', 'offline_after_optout')")
        context.set_offline(False)
        page.evaluate("history.pushState({}, '', '/b/next'); cs('event', 'after_optout')")
        page.evaluate("history.back()")
        page.wait_for_url(b, wait_until="commit")
        page.go_back(wait_until="commit")  # A from the back-forward cache
        page.wait_for_url(a, wait_until="commit")
        assert page.evaluate("window.marker") == 42
        assert len(web.recorder.wait(4, timeout=1.0)) == 3
        assert page.evaluate("localStorage._cs_q || '[]'") == "[]"
    finally:
        browser.close()


def test_noscript_pixel_sends_the_full_page_url_as_referer(web, browser) -> None:
    ctx = browser.new_context(java_script_enabled=False)
    try:
        page = ctx.new_page()
        url = web.page("/a", "A")
        page.goto(url + "?x=1")
        sent = web.recorder.wait(1)
        assert [(s.kind, s.params, s.referer) for s in sent] == [
            ("pixel", {"s": "shop"}, url + "?x=1")
        ]
    finally:
        ctx.close()


def test_collector_defaults_to_the_script_origin_and_no_site_means_no_tracking(
    web, context
) -> None:
    stub = "<script>window.cs=window.cs||function(){(cs.q=cs.q||[]).push([Date.now(),arguments])};</script>"
    plain = web.raw(
        "/plain",
        f'<title>P</title>{stub}<script async src="{web.collector_url}/t.js" data-site="shop"></script>',
    )
    nosite = web.raw(
        "/nosite", f'<title>N</title>{stub}<script async src="{web.collector_url}/t.js"></script>'
    )
    page = context.new_page()
    page.goto(nosite)
    page.wait_for_load_state("load")
    page.evaluate("cs('event', 'x')")
    assert web.recorder.wait(1, timeout=0.5) == []
    assert page.evaluate("cs.q.length") == 1  # still the stub: nothing loaded, nothing lost
    page.goto(plain)
    sent = web.recorder.wait(1)
    assert [(s.kind, stable(s.params)["u"]) for s in sent] == [("beacon", plain)]
