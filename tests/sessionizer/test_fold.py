"""Table-driven tests of the pure fold, one table per definition (DESIGN.md, Definitions)."""

from __future__ import annotations

import random

import pytest

from sessionizer import sessions
from sessionizer.split import Rules
from tests.sessionizer.factory import T0, by_start, hit, run

MIN = 60


# --- session boundaries --------------------------------------------------------------
@pytest.mark.parametrize(
    ("times", "sizes"),
    [
        ([0, 29 * MIN + 59], [2]),
        ([0, 30 * MIN], [2]),  # exactly 30 min is not over 30 min
        ([0, 30 * MIN + 0.001], [1, 1]),
        ([0, 20 * MIN, 40 * MIN, 60 * MIN], [4]),  # inactivity, not length
        ([0, 10, 31 * MIN + 10, 31 * MIN + 20, 70 * MIN], [2, 2, 1]),
    ],
)
def test_inactivity_timeout(times: list[float], sizes: list[int]) -> None:
    wh, _ = run([hit(t, f"/p{i}") for i, t in enumerate(times)])
    assert [s["hits"] for s in by_start(wh)] == sizes


def test_timeout_per_site() -> None:
    hits = [hit(0, site="a"), hit(11 * MIN, site="a"), hit(0, site="b"), hit(11 * MIN, site="b")]
    wh, _ = run(hits, rules_by_site={"a": Rules(timeout_ms=10 * 60_000)})
    assert [(s["site"], s["hits"]) for s in by_start(wh)] == [("a", 1), ("a", 1), ("b", 2)]


G, E = ("google", "cpc", "spring"), ("news", "email", "may")


@pytest.mark.parametrize(
    ("utms", "sizes"),
    [
        ([G, ("", "", ""), G], [3]),  # same campaign again, internal pages between
        ([G, E], [1, 1]),  # another campaign
        ([("", "", ""), G, ("", "", "")], [1, 2]),  # direct, then a campaign arrives
        ([G, ("google", "cpc", "autumn")], [1, 1]),  # only utm_campaign differs
        ([("", "", ""), ("", "", "")], [2]),
    ],
)
def test_campaign_change_starts_a_session(
    utms: list[tuple[str, str, str]], sizes: list[int]
) -> None:
    wh, _ = run([hit(i * 60, f"/p{i}", utm=u) for i, u in enumerate(utms)])
    assert [s["hits"] for s in by_start(wh)] == sizes


@pytest.mark.parametrize(
    ("split", "tz", "sizes"),
    [
        (False, "Europe/Paris", [2]),
        (True, "Europe/Paris", [1, 1]),  # 23:50 and 00:10 in Paris (UTC+1)
        (True, "UTC", [2]),  # 22:50 and 23:10 UTC: same day
        (True, "America/New_York", [2]),
    ],
)
def test_split_at_local_midnight(split: bool, tz: str, sizes: list[int]) -> None:
    # T0 is 10:00 UTC; +12h50 = 22:50 UTC
    hits = [hit(12 * 3600 + 50 * MIN, "/a"), hit(13 * 3600 + 10 * MIN, "/b")]
    wh, _ = run(hits, Rules(split_midnight=split, time_zone=tz))
    assert [s["hits"] for s in by_start(wh)] == sizes


@pytest.mark.parametrize(
    ("rules", "times", "sizes", "capped"),
    [
        (Rules(max_hits=3), [i * 10 for i in range(7)], [3, 3, 1], 2),
        (Rules(max_hits=3), [0, 10, 20], [3], 0),
        (Rules(max_duration_ms=3600_000), [i * 20 * MIN for i in range(5)], [4, 1], 1),
        (Rules(max_duration_ms=3600_000), [0, 1800, 3600], [3], 0),  # exactly the cap
    ],
)
def test_caps_on_hits_and_length_are_counted(
    rules: Rules, times: list[int], sizes: list[int], capped: int
) -> None:
    wh, state = run([hit(t, f"/p{i}") for i, t in enumerate(times)], rules)
    assert [s["hits"] for s in by_start(wh)] == sizes
    assert state.capped == capped


# --- pages ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "event", "page"),
    [
        ("/a?utm_source=x&utm_medium=y&id=3", "pageview", "/a?id=3"),
        ("/a?gclid=1&fbclid=2&msclkid=3&_ga=4", "pageview", "/a"),
        ("/shop?b=2&a=1&utm_campaign=z", "pageview", "/shop?b=2&a=1"),
        ("/a?x=1", "signup", ""),  # not a page
        ("/find?q=red+shoes", "search", "/find?q=red+shoes"),
        ("", "pageview", "/"),
    ],
)
def test_page_is_path_and_query_without_tracking(path: str, event: str, page: str) -> None:
    assert hit(0, path, event=event).page == page


def test_entry_exit_duration_bounce_seq_neighbours() -> None:
    hits = [hit(0, "/a"), hit(5, "/x", event="click"), hit(30, "/b"), hit(95, "/c")]
    wh, _ = run(hits)
    (s,) = by_start(wh)
    assert (s["entry_path"], s["exit_path"], s["paths"]) == ("/a", "/c", ["/a", "/b", "/c"])
    assert (s["duration_s"], s["hits"], s["pageviews"], s["events"], s["is_bounce"]) == (
        95,
        4,
        3,
        1,
        0,
    )
    rows = sorted(wh.hits.values(), key=lambda x: x[1].hit.ts)
    assert [(sid, e.page) for sid, e in rows] == [
        (s["session_id"], p) for p in ("/a", "", "/b", "/c")
    ]


def test_seq_prev_next_flags() -> None:
    from sessionizer.flags import build_session

    hits = [
        hit(0, "/a"),
        hit(5, "/x", event="click"),
        hit(30, "/b"),
        hit(95, "/c"),
        hit(99, "/c", event="purchase"),
    ]
    r = build_session("id", hits, Rules(), closed=True, number=1)
    # an event's neighbours are the pages before and after it ('' at the session's end)
    assert [(f.seq, f.prev_page, f.next_page) for f in r.flags] == [
        (1, "", "/b"),
        (2, "/a", "/b"),
        (3, "/a", "/c"),
        (4, "/b", ""),
        (5, "/c", ""),
    ]
    only_events = build_session(
        "id2", [hit(0, "/x", event="click")], Rules(), closed=True, number=1
    )
    assert [(f.prev_page, f.next_page) for f in only_events.flags] == [("", "")]


@pytest.mark.parametrize(
    ("pages", "bounce"), [(["/a"], 1), (["/a", "/a"], 0), (["/a", "/b"], 0), ([], 1)]
)
def test_bounce(pages: list[str], bounce: int) -> None:
    hits = [hit(i, p) for i, p in enumerate(pages)] + [hit(50, "/z", event="click")]
    wh, _ = run(hits)
    assert by_start(wh)[0]["is_bounce"] == bounce


# --- searches ------------------------------------------------------------------------
S = "/search?q=shoes"


@pytest.mark.parametrize(
    ("seq", "dead", "opened", "pogo"),
    [
        # (path, results) ...; flags per search hit in order
        ([(S, 0), ("/p1", None)], [1], [0], [0]),  # 0 results: no result to open
        ([(S, 0), ("/p1", None), (S, 0)], [1, 0], [0, 0], [0, 0]),  # nor a pogo-stick
        ([(S, 5)], [1], [0], [0]),  # last page of the session
        ([(S, 5), ("/search?q=boots", 3), ("/p1", None)], [1, 0], [0, 1], [0, 0]),  # searched again
        ([(S, 5), ("/p1", None)], [0], [1], [0]),  # success
        # back to the results page (a back-loop) is no new search: no flags of its own,
        # not counted in `searches`, as the searches report counts it (a pogo-stick)
        (
            [(S, 5), ("/p1", None), (S, 5), ("/p2", None)],
            [0, 0],
            [1, 0],
            [1, 0],
        ),  # pogo then another result
        ([(S, 5), ("/p1", None), (S, 5)], [0, 0], [1, 0], [1, 0]),  # pogo then left
        (
            [(S, 5), ("/search?q=boots", 3), (S, 5), ("/p1", None)],
            [1, 1, 0],
            [0, 0, 0],
            [0, 0, 0],
        ),  # shoes, boots, back to the shoes results: boots was left for another search
        # the same term again (results page 2, a re-sort, a reload) is the same search
        # going on, not searching again: only the last of the run can be a dead end
        ([(S, 5), (S, 5), ("/p1", None)], [0, 0], [0, 1], [0, 0]),
        ([(S, 5), (S + "&page=2", 5), ("/p1", None)], [0, 0], [0, 1], [0, 0]),
        ([(S, 5), ("/search?q=+Shoes", 5), ("/p1", None)], [0, 0], [0, 1], [0, 0]),
        ([(S, 5), (S + "&page=2", 5)], [0, 1], [0, 0], [0, 0]),  # left on page 2
        ([(S, 0), (S, 0)], [1, 1], [0, 0], [0, 0]),  # 0 results is a dead end each time
        (
            [("/find?keywords=x", 2), ("/find?searchword=y", 2), ("/p", None)],
            [1, 0],
            [0, 1],
            [0, 0],
        ),
    ],
)
def test_dead_end_searches_result_opened_and_pogo(
    seq: list[tuple[str, int | None]], dead: list[int], opened: list[int], pogo: list[int]
) -> None:
    from sessionizer.flags import build_session

    hits = [hit(i * 20, p, n=n) for i, (p, n) in enumerate(seq)]
    r = build_session("id", hits, Rules(), closed=True, number=1)
    idx = [i for i, e in enumerate(hits) if e.search_query]
    assert [int(r.flags[i].is_dead_end_search) for i in idx] == dead
    assert [int(r.flags[i].search_result_opened) for i in idx] == opened
    assert [int(r.flags[i].is_pogo_stick) for i in idx] == pogo
    s = r.session
    searches = sum(1 for i in idx if not r.flags[i].is_back_loop)
    assert (
        s["searches"],
        s["dead_end_searches"],
        s["search_results_opened"],
        s["pogo_sticks"],
    ) == (searches, sum(dead), sum(opened), sum(pogo))
    assert s["dead_end_terms"] == [
        hits[i].search_query for i, d in zip(idx, dead, strict=True) if d
    ]


def test_search_event_and_last_page_only_when_closed() -> None:
    from sessionizer.flags import build_session

    hits = [hit(0, "/"), hit(5, "/results", event="search", q="red hat", n=4)]
    assert hits[1].search_query == "red hat"
    assert (
        build_session("i", hits, Rules(), closed=False, number=1).session["dead_end_searches"] == 0
    )
    assert build_session("i", hits, Rules(), closed=True, number=1).session["dead_end_terms"] == [
        "red hat"
    ]


# --- back-loops ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pages", "gaps", "loops", "quick", "paths", "looping"),
    [
        (["/a", "/b", "/a"], [30, 30], [0, 0, 1], [0, 0, 0], ["/b"], 0),
        (["/a", "/b", "/a"], [30, 9.999], [0, 0, 1], [0, 0, 1], ["/b"], 0),  # time on B < 10 s
        (["/a", "/b", "/a"], [30, 10], [0, 0, 1], [0, 0, 0], ["/b"], 0),
        (["/a", "/a", "/a"], [5, 5], [0, 0, 0], [0, 0, 0], [], 0),  # B == A
        (["/a", "/b", "/a", "/b"], [5, 5, 5], [0, 0, 1, 1], [0, 0, 1, 1], ["/b", "/a"], 1),
        (["/a", "/b", "/c", "/b", "/a"], [5, 5, 5, 5], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], ["/c"], 0),
        # every return counts: A B A B A is 3 back-loops
        (
            ["/a", "/b", "/a", "/b", "/a"],
            [20, 20, 20, 20],
            [0, 0, 1, 1, 1],
            [0, 0, 0, 0, 0],
            ["/b", "/a", "/b"],
            1,
        ),
        # a reload is a page view: B reloaded puts A three pages back, no back-loop
        (["/a", "/b", "/b", "/a"], [20, 20, 20], [0, 0, 0, 0], [0, 0, 0, 0], [], 0),
        # tracking parameters are not part of the page
        (["/a", "/b", "/a?gclid=1&utm_term=x"], [20, 20], [0, 0, 1], [0, 0, 0], ["/b"], 0),
    ],
)
def test_back_loops(
    pages: list[str],
    gaps: list[float],
    loops: list[int],
    quick: list[int],
    paths: list[str],
    looping: int,
) -> None:
    from sessionizer.flags import build_session

    t, hits = 0.0, []
    for i, p in enumerate(pages):
        hits.append(hit(t, p, nav="back_forward" if loops[i] else "navigate"))
        t += gaps[i] if i < len(gaps) else 0
    r = build_session("id", hits, Rules(), closed=True, number=1)
    assert [int(f.is_back_loop) for f in r.flags] == loops
    assert [int(f.is_quick_back) for f in r.flags] == quick
    s = r.session
    assert (s["back_loops"], s["quick_backs"], s["back_loop_paths"], s["is_back_looping"]) == (
        sum(loops),
        sum(quick),
        paths,
        looping,
    )
    assert s["back_forward_navs"] == sum(loops)


def test_quick_back_threshold_is_a_rule() -> None:
    from sessionizer.flags import build_session

    hits = [hit(0, "/a"), hit(5, "/b"), hit(25, "/a")]
    assert (
        build_session("i", hits, Rules(quick_back_ms=30_000), True, 1).session["quick_backs"] == 1
    )
    assert build_session("i", hits, Rules(), True, 1).session["quick_backs"] == 0


# --- revenue, CRM, returning ---------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "total"),
    [
        (["12.5", "7"], 19.5),
        (["abc", "3"], 3.0),
        (["nan", "inf", "-2"], -2.0),
        ([], 0.0),
        (["1e13"], 0.0),
    ],
)
def test_revenue_from_props(values: list[str], total: float) -> None:
    hits = [hit(i, "/buy", event="purchase", props={"revenue": v}) for i, v in enumerate(values)]
    wh, _ = run([hit(0, "/"), *hits])
    assert by_start(wh)[0]["revenue"] == total


def test_crm_id_from_the_hit_on_and_next_sessions() -> None:
    hits = [hit(0, "/a"), hit(10, "/login", uid="C42"), hit(20, "/b"), hit(3 * 3600, "/c")]
    wh, _ = run(hits)
    first, second = by_start(wh)
    assert (first["crm_id"], second["crm_id"]) == ("C42", "C42")
    assert [
        sid_e[1].hit.crm_id for sid_e in sorted(wh.hits.values(), key=lambda x: x[1].hit.ts)
    ] == ["", "C42", "", ""]


@pytest.mark.parametrize(
    ("times", "since", "crm"),
    [
        # (session hits, seconds after T0; link made at `since`) -> each session's crm_id
        ([[0, 60]], 30, ["C1"]),  # linked while the visitor was on the site
        ([[0, 60]], 60 + 20 * MIN, ["C1"]),  # later, still within the session timeout
        ([[0, 60]], 60 + 30 * MIN + 1, [""]),  # the session had ended
        ([[0, 60], [3 * 3600]], 60 + 40 * MIN, ["", "C1"]),  # only the later session
        ([[0, 60], [3 * 3600]], -10, ["C1", "C1"]),
    ],
)
def test_a_stored_link_reaches_the_session_open_at_its_time_and_later_ones(
    times: list[list[float]], since: float, crm: list[str]
) -> None:
    """A link read from ``identities`` (a POST /api/identify made at ``since``): the
    session the visitor was in then carries it, even when it started before."""
    state = sessions.State(
        rules=lambda s: Rules(),
        history=lambda s, v: sessions.Known(crm_id="C1", crm_since=T0 + int(since * 1000)),
    )
    closed = [r for seg in times for t in seg for r in sessions.fold(state, hit(t, f"/{t}"))[1]]
    closed += sessions.close_all(state)
    assert [r.session["crm_id"] for r in closed] == crm


def test_a_uid_link_does_not_reach_the_campaign_session_before_it() -> None:
    """The session a new campaign ended just before the login stays without the id,
    also when a late hit makes the sessionizer rebuild the visitor from stored hits."""
    g = ("google", "cpc", "spring")
    hits = [hit(0, "/a"), hit(60, "/lp", utm=g), hit(90, "/login", uid="C1"), hit(120, "/b")]
    wh, _ = run(hits)
    assert [s["crm_id"] for s in by_start(wh)] == ["", "C1"]
    state = sessions.State(
        rules=lambda s: Rules(),
        history=lambda s, v: sessions.Known(crm_id="C1", crm_since=T0 + 90_000),
    )
    state.visitors[("s1", "v1")] = sessions.Visitor("s1", "v1", known_crm=("C1", T0 + 90_000))
    rebuilt = sessions.amend(state, ("s1", "v1"), [e for _, e in wh.hits.values()], {})
    rebuilt += sessions.close_all(state)
    assert [r.session["crm_id"] for r in rebuilt] == ["", "C1"]


def test_a_replay_of_the_uid_session_keeps_the_hits_before_the_login_unlinked() -> None:
    """After a crash the uid's own session is replayed with the link already stored (its
    time is the uid hit's): the hits before the login keep '' as in the first run."""
    hits = [hit(0, "/a"), hit(30, "/login", uid="C1"), hit(60, "/b")]

    def fold_all(known: sessions.Known) -> list[tuple[str, list[str]]]:
        state = sessions.State(rules=lambda s: Rules(), history=lambda s, v: known)
        out = [r for e in hits for r in sessions.fold(state, e)[1]] + sessions.close_all(state)
        return [(r.session["crm_id"], [f.crm_id for f in r.flags]) for r in out]

    first = fold_all(sessions.Known())
    assert first == [("C1", ["", "C1", "C1"])]
    assert fold_all(sessions.Known(crm_id="C1", crm_since=T0 + 30_000)) == first


def test_session_numbers_and_returning() -> None:
    hits = [hit(h * 3600, "/") for h in range(3)] + [hit(0, "/", vid="v2")]
    wh, _ = run(hits)
    assert [(s["visitor_id"], s["session_number"], s["is_returning"]) for s in by_start(wh)] == [
        ("v1", 1, 0),
        ("v1", 2, 1),
        ("v1", 3, 1),
        ("v2", 1, 0),
    ]


def test_history_counts_sessions_written_before() -> None:
    state = sessions.State(
        rules=lambda s: Rules(), history=lambda s, v: sessions.Known(4, T0 - 86400_000)
    )
    sessions.fold(state, hit(0, "/"))
    (r,) = sessions.close_all(state)
    assert (r.session["session_number"], r.session["is_returning"]) == (5, 1)


# --- event time ----------------------------------------------------------------------
def test_out_of_order_inside_open_session_is_sorted_and_split() -> None:
    ordered = [hit(0, "/a"), hit(60, "/b"), hit(45 * MIN, "/c"), hit(46 * MIN, "/d")]
    arrival = [ordered[2], ordered[0], ordered[3], ordered[1]]
    wh, _ = run(arrival)
    assert [s["paths"] for s in by_start(wh)] == [["/a", "/b"], ["/c", "/d"]]


def test_late_hit_after_write_amends_with_same_id_and_tombstones_old_first() -> None:
    a, b, c = hit(100, "/a"), hit(200, "/b"), hit(50, "/late")
    wh, _ = run([a, b], flush_every=1)
    (old,) = wh.sessions.values()
    wh2, _ = run([a, b, c], flush_every=1)
    (new,) = wh2.sessions.values()
    assert new["paths"] == ["/late", "/a", "/b"] and new["session_id"] != old["session_id"]
    # an amend that keeps the first hit keeps the session id
    wh3, _ = run([a, b, hit(150, "/mid")], flush_every=1)
    assert [s["session_id"] for s in wh3.sessions.values()] == [old["session_id"]]


def test_late_hit_merges_two_sessions_and_renumbers() -> None:
    a, b = hit(0, "/a"), hit(50 * MIN, "/b")
    bridge = hit(25 * MIN, "/bridge")
    wh, _ = run([a, b, bridge], flush_every=1)
    assert [(s["paths"], s["session_number"]) for s in by_start(wh)] == [
        (["/a", "/bridge", "/b"], 1)
    ]


def test_any_arrival_order_gives_the_sorted_result() -> None:
    rng = random.Random(7)
    hits = [hit(t, f"/p{t % 5}") for t in (0, 100, 200, 2500, 2600, 9000, 9100, 9200)]
    expected = [(s["session_id"], s["paths"], s["session_number"]) for s in by_start(run(hits)[0])]
    for _ in range(20):
        shuffled = hits[:]
        rng.shuffle(shuffled)
        got = [
            (s["session_id"], s["paths"], s["session_number"])
            for s in by_start(run(shuffled, flush_every=2)[0])
        ]
        assert got == expected


def test_row_signature_covers_every_hit_flag() -> None:
    """The loop skips rewriting hit rows whose flags are unchanged: its signature must
    name every HitFlags field (a new flag must be added there too)."""
    import inspect
    from dataclasses import fields

    from sessionizer import loop
    from sessionizer.flags import HitFlags

    source = inspect.getsource(loop.Sessionizer._skip_unchanged)
    assert [f.name for f in fields(HitFlags) if f"f.{f.name}" not in source] == []


# --- erasure -------------------------------------------------------------------------
def test_an_erased_visitor_comes_back_as_a_new_visitor() -> None:
    """After an erase the hits of the open session from before it go, the later ones make
    the first session of a new visitor: numbered 1, not returning, no CRM id (as the same
    hits would give after a restart, once the erased rows are deleted)."""
    state = sessions.State(
        rules=lambda site: Rules(),
        history=lambda site, vid: sessions.Known(2, T0 - 86_400_000, "c1"),
    )
    for e in (hit(0, "/a", vid="gone0001", uid="c1"), hit(60, "/b", vid="gone0001")):
        sessions.fold(state, e)
    assert sessions.take_dirty(state)[0].session["session_number"] == 3
    late = hit(90, "/c", vid="gone0001")  # received after the erasure below
    sessions.fold(state, late)
    closed = sessions.forget_erased(state, ("s1", "gone0001"), erased_ms=T0 + 75_000)
    assert closed == []
    [open_session] = sessions.take_dirty(state)
    assert open_session.session["paths"] == ["/c"]
    assert (
        open_session.session["session_number"],
        open_session.session["is_returning"],
        open_session.session["crm_id"],
    ) == (1, 0, "")
    assert open_session.session_id == sessions.session_id("s1", "gone0001", late.hit.hit_id)
    # nothing after the erasure: the visitor leaves memory altogether
    sessions.forget_erased(state, ("s1", "gone0001"), erased_ms=T0 + 100_000)
    assert state.visitors == {} and sessions.take_dirty(state) == []
    assert sessions.forget_erased(state, ("s1", "never001"), erased_ms=T0) == []
