"""The dashboard by keyboard alone, in Debian Chromium against `clickstream serve` with the
demo traffic of test_dashboard_browser (the same fixtures: a serve of this module's own).

Screenshots of the focused states go where test_dashboard_browser's go (REPORTS_SCREENSHOTS).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Served
from tests.js_snippet.chromium import launch
from tests.reports import test_dashboard_browser as browser_tests

pytestmark = [pytest.mark.browser, pytest.mark.slow]

served = browser_tests.served
shots = browser_tests.shots
_wait_loaded = browser_tests._wait_loaded

# the focused element, named as a test can read it
_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return "body";
  if (e.id) return "#" + e.id;
  if (e.closest("#tabs")) return "tab:" + e.dataset.report;
  if (e.matches(".quick button")) return "quick:" + e.dataset.days;
  if (e.matches("button.go")) return "show";
  if (e.matches("#extra [name]")) return "extra:" + e.name;
  if (e.matches("#extra button")) return "apply";
  if (e.matches("a[download]")) return "csv";
  if (e.matches("a[data-page]")) return "page:" + e.dataset.page;
  return e.tagName.toLowerCase();
}"""

# the keyboard focus ring of the focused element, as drawn
_RING = """() => {
  const s = getComputedStyle(document.activeElement);
  return { style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor,
           visible: document.activeElement.matches(":focus-visible") };
}"""


def _tab_until(page: object, prefix: str, seen: list[str], limit: int = 80) -> str:
    """Presses Tab until the focused element's name starts with `prefix`; `seen` gets the way."""
    for _ in range(limit):
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
        name: str = page.evaluate(_FOCUSED)  # type: ignore[attr-defined]
        if not seen or seen[-1] != name:  # a date input's day/month/year take a Tab each
            seen.append(name)
        if name.startswith(prefix):
            return name
    raise AssertionError(f"{prefix} not reached by Tab; focus went {seen}")


def _assert_ring(page: object) -> None:
    ring = page.evaluate(_RING)  # type: ignore[attr-defined]
    assert ring["visible"] and ring["style"] != "none" and ring["width"] >= 2, ring


def test_dashboard_by_keyboard_alone(served: Served, shots: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page, errors = browser_tests.watched_page(browser, viewport={"width": 1280, "height": 900})
        page.goto(served.url + "/#report=overview&site=demo")
        _wait_loaded(page, "overview")
        page.evaluate("window.notReloaded = true")  # gone if a link loaded the page again

        # from the top: the site, the range, the quick ranges and Show, then the report tabs
        way: list[str] = []
        assert _tab_until(page, "tab:backloops", way) == "tab:backloops"
        assert way == [
            "#site",
            "#from",
            "#to",
            "quick:7",
            "quick:30",
            "quick:90",
            "show",
            "tab:overview",
            "tab:funnel",
            "tab:returning",
            "tab:paths",
            "tab:searches",
            "tab:backloops",
        ], way
        _assert_ring(page)
        page.locator("#tabs").screenshot(path=str(shots / "keyboard-tab-focus.png"))
        page.screenshot(path=str(shots / "keyboard-tab-focus-page.png"))

        page.keyboard.press("Enter")
        status = _wait_loaded(page, "backloops")
        assert "report=backloops" in page.url and "site=demo" in page.url, page.url
        assert "error" not in status
        assert page.locator("#report h2", has_text="Pages people come back to").is_visible()
        assert page.get_attribute("#tabs a[data-report=backloops]", "aria-current") == "page"
        assert page.locator("#tabs a[aria-current]").count() == 1
        assert page.evaluate(_FOCUSED) == "tab:backloops"  # the tabs stay where they were

        # on through the report's form and its CSV links to the first page in a table
        way = []
        link = _tab_until(page, "page:", way)
        assert "apply" in way and "csv" in way, way
        target = link.removeprefix("page:")
        href = page.evaluate("document.activeElement.getAttribute('href')")
        _assert_ring(page)
        page.evaluate("document.activeElement.scrollIntoView({block: 'center'})")
        page.screenshot(path=str(shots / "keyboard-page-link-focus.png"))

        page.keyboard.press("Enter")
        status = _wait_loaded(page, "paths")
        assert "error" not in status
        heading = page.inner_text("#report section.panel h2 span")
        assert heading.startswith(f"Transitions of {target} · "), heading
        assert page.inner_text(".transitions .focus") == target
        assert page.url.endswith(href) and "report=paths" in page.url
        assert page.get_attribute("#tabs a[data-report=paths]", "aria-current") == "page"
        # the focus is in the new report (not back at the top of the page): Tab goes on there
        assert page.evaluate(_FOCUSED) == "#report"
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('report').contains(document.activeElement)")
        assert page.evaluate("window.notReloaded === true")  # hash routing, no page load

        # Back returns to the back-loops report; the link's URL alone opens the transitions
        page.go_back()
        _wait_loaded(page, "backloops")
        fresh = browser.new_page()  # type: ignore[attr-defined]
        fresh.goto(served.url + "/" + href)
        _wait_loaded(fresh, "paths")
        assert fresh.inner_text(".transitions .focus") == target

        # a mouse click draws no ring on a link (only the keyboard does)
        page.click("#tabs a[data-report=overview]")
        _wait_loaded(page, "overview")
        assert not page.evaluate("document.activeElement.matches(':focus-visible')")
        browser.close()  # type: ignore[attr-defined]
    assert errors == []


def test_dashboard_space_and_enter_on_range_buttons(served: Served) -> None:
    """The quick ranges are buttons: Space and Enter press them."""
    from playwright.sync_api import sync_playwright

    def shown_after(page: object, key: str) -> tuple[str, str, str]:
        before = page.input_value("#from")  # type: ignore[attr-defined]
        page.keyboard.press(key)  # type: ignore[attr-defined]
        page.wait_for_function(  # type: ignore[attr-defined]
            "f => document.getElementById('from').value !== f", arg=before
        )
        fr, to = page.input_value("#from"), page.input_value("#to")  # type: ignore[attr-defined]
        page.wait_for_function(  # type: ignore[attr-defined]
            "r => document.getElementById('status').textContent.includes(r)", arg=f"{fr} to {to}"
        )
        return fr, to, _wait_loaded(page, "overview")

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(served.url + "/#report=overview&site=demo")
        _wait_loaded(page, "overview")  # the default range: 30 days
        _tab_until(page, "quick:7", [])
        _assert_ring(page)
        week = shown_after(page, "Space")
        _tab_until(page, "quick:90", [])
        quarter = shown_after(page, "Enter")
        browser.close()  # type: ignore[attr-defined]
    assert week[1] == quarter[1] and quarter[0] < week[0]
    assert "error" not in week[2] + quarter[2]


def test_dashboard_page_link_leaves_other_reports_parameters(served: Served) -> None:
    """A page link from a report whose form was applied (the overview's interval, the funnel's
    steps) opens the transitions without those, which the paths report refuses; the site,
    range and segment go along."""
    from playwright.sync_api import sync_playwright

    opened: dict[str, tuple[str, str]] = {}
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()  # type: ignore[attr-defined]
        for report, own in [
            ("overview", "interval=hour&device=desktop"),
            ("funnel", "step=%2F&step=%2Fcart&window=1d&by=visitor&mode=default"),
        ]:
            page.goto(f"{served.url}/#report={report}&site=demo&{own}")
            _wait_loaded(page, report)
            link = page.locator("#report td a[data-page]").first
            target = link.get_attribute("data-page")
            link.focus()
            page.keyboard.press("Enter")
            page.wait_for_function(  # the next report's answer (or its error), not this one's
                """r => { const s = document.getElementById('status').textContent;
                          return !s.startsWith(r + ' · ') && !s.startsWith('Loading'); }""",
                arg=report,
                timeout=60_000,
            )
            opened[report] = (page.inner_text("#status"), page.url)
            if opened[report][0].startswith("paths · "):
                assert page.inner_text(".transitions .focus") == target
        browser.close()  # type: ignore[attr-defined]
    for report, (status, url) in opened.items():
        assert status.startswith("paths · "), (report, status)
        assert "report=paths" in url and "site=demo" in url and "from=" in url, url
        assert "step=" not in url and "window=" not in url and "interval=" not in url, url
    assert "device=desktop" in opened["overview"][1]
