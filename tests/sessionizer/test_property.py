"""The fold against a deliberately plain reference of the same definitions.

The reference sorts each visitor's hits and walks them once with the rules written
out longhand; the fold gets the same hits in any arrival order (late hits included,
amended through a pure in-memory warehouse) and must end with the same sessions.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionizer.enrich import Enriched
from sessionizer.sessions import session_id
from sessionizer.split import Rules
from tests.sessionizer.factory import by_start, hit, run

RULES = Rules(
    timeout_ms=30 * 60_000, quick_back_ms=10_000, max_hits=6, max_duration_ms=2 * 3600_000
)
PATHS = ["/a", "/b", "/c", "/a?utm_source=x", "/s?q=red", "/s?q=blue", "/s?k=x&gclid=9"]
CAMPAIGNS = [("", "", "")] * 6 + [("g", "cpc", "one"), ("n", "email", "two")]
TRACKING = ("utm_", "gclid", "fbclid", "msclkid", "_ga")


def plain_page(e: Enriched) -> str:
    if e.hit.event not in ("pageview", "search"):
        return ""
    path, _, query = e.hit.url.removeprefix("https://ex.com").partition("?")
    kept = [p for p in query.split("&") if p and not p.split("=")[0].startswith(TRACKING)]
    return path + ("?" + "&".join(kept) if kept else "")


def plain_is_search(e: Enriched) -> bool:
    if e.hit.event == "search":
        return True
    query = e.hit.url.partition("?")[2]
    return any(p.split("=")[0] in ("q", "k") for p in query.split("&"))


def plain_term(e: Enriched) -> str:
    query = e.hit.url.partition("?")[2]
    return next(
        (v for k, _, v in (p.partition("=") for p in query.split("&")) if k in ("q", "k")), ""
    )


def reference(hits: list[Enriched], rules: Rules) -> list[tuple[Any, ...]]:
    visitors: dict[tuple[str, str], list[Enriched]] = {}
    for e in hits:
        visitors.setdefault((e.hit.site, e.hit.visitor_id), []).append(e)
    out = []
    for (site, vid), hs in sorted(visitors.items()):
        hs = sorted(hs, key=lambda e: (e.hit.ts, e.hit.hit_id))
        sessions: list[list[Enriched]] = []
        for e in hs:
            new = not sessions
            if sessions:
                cur = sessions[-1]
                campaign = (e.hit.utm_source, e.hit.utm_medium, e.hit.utm_campaign)
                cur_campaign = ("", "", "")
                for x in cur:
                    if x.hit.utm_source or x.hit.utm_medium or x.hit.utm_campaign:
                        cur_campaign = (x.hit.utm_source, x.hit.utm_medium, x.hit.utm_campaign)
                new = (
                    e.hit.ts - cur[-1].hit.ts > rules.timeout_ms
                    or (campaign != ("", "", "") and campaign != cur_campaign)
                    or len(cur) >= rules.max_hits
                    or e.hit.ts - cur[0].hit.ts > rules.max_duration_ms
                )
            if new:
                sessions.append([e])
            else:
                sessions[-1].append(e)
        for number, s in enumerate(sessions, 1):
            page_hits = [e for e in s if plain_page(e)]
            pages = [plain_page(e) for e in page_hits]
            returns = [k for k in range(2, len(pages)) if pages[k] == pages[k - 2] != pages[k - 1]]
            dead = 0
            for k, e in enumerate(page_hits):
                if k in returns:  # back on results seen before: not a new search
                    continue
                if plain_is_search(e) and (
                    e.hit.search_results == 0
                    or k == len(page_hits) - 1
                    or (
                        plain_is_search(page_hits[k + 1])
                        and not (plain_term(e) and plain_term(e) == plain_term(page_hits[k + 1]))
                    )
                ):
                    dead += 1
            loops = quick = 0
            for k in returns:
                loops += 1
                if page_hits[k].hit.ts - page_hits[k - 1].hit.ts < rules.quick_back_ms:
                    quick += 1
            out.append(
                (
                    site,
                    vid,
                    session_id(site, vid, s[0].hit.hit_id),
                    number,
                    len(s),
                    pages,
                    dead,
                    loops,
                    quick,
                    (s[-1].hit.ts - s[0].hit.ts) // 1000,
                )
            )
    return out


def fold_result(hits: list[Enriched], flush_every: int) -> list[tuple[Any, ...]]:
    wh, _ = run(hits, RULES, flush_every=flush_every)
    return [
        (
            s["site"],
            s["visitor_id"],
            s["session_id"],
            s["session_number"],
            s["hits"],
            s["paths"],
            s["dead_end_searches"],
            s["back_loops"],
            s["quick_backs"],
            s["duration_s"],
        )
        for s in by_start(wh)
    ]


hit_spec = st.tuples(
    st.sampled_from(["v1", "v2", "v3"]),
    st.integers(min_value=0, max_value=2400),  # seconds after the visitor's previous hit
    st.sampled_from(PATHS),
    st.sampled_from(["pageview"] * 5 + ["search", "click"]),
    st.sampled_from([None, None, 0, 4]),
    st.sampled_from(CAMPAIGNS),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(hit_spec, min_size=1, max_size=30),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=5),
    st.booleans(),
)
def test_fold_matches_reference_in_any_arrival_order(
    specs: list[Any], rnd: Any, flush_every: int, shuffle: bool
) -> None:
    clock: dict[str, int] = {}
    hits = []
    for vid, gap, path, event, n, campaign in specs:
        clock[vid] = clock.get(vid, 0) + gap
        hits.append(hit(clock[vid], path, vid=vid, event=event, n=n, utm=campaign))
    expected = reference(hits, RULES)
    arrival = hits[:]
    if shuffle:
        rnd.shuffle(arrival)
    assert fold_result(arrival, flush_every) == expected


def test_two_sessions_starting_at_the_same_millisecond() -> None:
    """Found by the property test: a campaign hit at the same time as the previous hit
    starts session 2 with the same start_ts (ordered by number, not by chance)."""
    hits = [
        hit(0, "/a", vid="v2", hid="x1"),
        hit(0, "/a", vid="v2", hid="x2", utm=("g", "cpc", "one")),
    ]
    assert fold_result(hits[::-1], 1) == reference(hits, RULES)
