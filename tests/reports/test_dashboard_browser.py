"""The dashboard in Debian Chromium against a running `clickstream serve` with demo traffic.

Screenshots go to a temporary directory (printed; kept when REPORTS_SCREENSHOTS names one).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Served, start_serve
from tests.js_snippet.chromium import launch

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPORTS = ("overview", "funnel", "returning", "paths", "searches", "backloops", "customers")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = start_serve(tmp_path_factory.mktemp("serve") / "data")
    try:
        demo = subprocess.run(
            [
                sys.executable,
                "-m",
                "clickstream.cli",
                "demo",
                "--collector",
                s.url,
                "--site",
                "demo",
                "--sessions",
                "300",
                "--days",
                "14",
                "--seed",
                "4",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert demo.returncode == 0, demo.stderr
        deadline = time.monotonic() + 120
        while True:  # the demo's hits travel through Kafka and the sessionizer first
            s.flush()
            if (
                s.sql("SELECT count() FROM clickstream.sessions FINAL WHERE site = 'demo'")[0][0]
                >= 250
            ):
                break
            assert time.monotonic() < deadline, "demo sessions did not arrive"
            time.sleep(1)
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(os.environ.get("REPORTS_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {path}")
    return path


def _wait_loaded(page: object, report: str) -> str:
    page.wait_for_function(  # type: ignore[attr-defined]
        "r => document.getElementById('status').textContent.startsWith(r + ' · ')",
        arg=report,
        timeout=60_000,
    )
    return page.inner_text("#status")  # type: ignore[attr-defined,no-any-return]


def watched_page(browser: Any, **options: object) -> tuple[Any, list[str]]:
    """A new page and the list its script errors and console errors are collected in."""
    page = browser.new_page(**options)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page, errors


def test_dashboard_switches_reports_and_range(served: Served, shots: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page, errors = watched_page(browser, viewport={"width": 1280, "height": 900})
        page.goto(served.url + "/")
        # the site picker fills in the busiest site and the last 30 days
        _wait_loaded(page, "overview")
        assert page.input_value("#site") == "demo"
        visitors = int(page.inner_text(".card .v").replace(",", ""))
        assert 100 <= visitors <= 300
        page.screenshot(path=str(shots / "overview-30d.png"), full_page=True)

        for report in REPORTS[1:]:
            page.click(f"#tabs a[data-report={report}]")
            status = _wait_loaded(page, report)
            assert page.locator("#status.error").count() == 0, status
            page.screenshot(path=str(shots / f"{report}.png"), full_page=True)
        assert page.locator("#report svg").count() == 0  # customers: tables only
        assert page.locator("#report table").count() == 2

        # the Install page shows the snippet and the pixel of the chosen site
        page.click("#tabs a[data-report=install]")
        _wait_loaded(page, "install")
        js, pixel = page.locator("pre.code").all_inner_texts()
        assert "/t.js" in js and "demo" in js
        assert "/p.gif?" in pixel and "s=demo" in pixel
        page.screenshot(path=str(shots / "install.png"), full_page=True)

        # funnel: the steps come back in order, each no larger than the one before
        page.click("#tabs a[data-report=funnel]")
        _wait_loaded(page, "funnel")
        counts = [
            int(c.replace(",", ""))
            for c in page.locator(
                "section.panel:nth-of-type(2) tbody tr td:nth-child(2)"
            ).all_inner_texts()
        ]
        assert len(counts) == 5 and counts[0] > 0 and counts == sorted(counts, reverse=True)

        # a shorter range: 7 days shows 7 points and fewer (or as many) visitors
        page.click("#tabs a[data-report=overview]")
        _wait_loaded(page, "overview")
        page.click(".quick button[data-days='7']")
        page.wait_for_function("location.hash.includes('from=')")
        status = _wait_loaded(page, "overview")
        fr, to = page.input_value("#from"), page.input_value("#to")
        assert (
            time.mktime(time.strptime(to, "%Y-%m-%d")) - time.mktime(time.strptime(fr, "%Y-%m-%d"))
        ) // 86400 == 6
        assert f"{fr} to {to}" in status
        assert int(page.inner_text(".card .v").replace(",", "")) <= visitors
        assert page.locator("#report svg circle").count() == 14  # 7 days x (visitors, pageviews)
        page.screenshot(path=str(shots / "overview-7d.png"), full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
        phone.goto(served.url + "/#report=funnel&site=demo")
        _wait_loaded(phone, "funnel")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
        phone.screenshot(path=str(shots / "phone-funnel.png"), full_page=True)
        browser.close()  # type: ignore[attr-defined]
    assert errors == []


def test_cli_report_against_running_serve(served: Served) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "clickstream.cli",
            "report",
            "funnel",
            "--url",
            served.url,
            "--site",
            "demo",
            "--step",
            "/",
            "--step",
            "/cart",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    cli_steps = json.loads(out.stdout)["steps"]
    api = httpx.get(
        f"{served.url}/api/reports/funnel",
        params=[("site", "demo"), ("step", "/"), ("step", "/cart")],
    ).json()
    assert cli_steps == api["steps"] and cli_steps[0]["count"] > 0
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "clickstream.cli",
            "report",
            "funnel",
            "--url",
            served.url,
            "--site",
            "demo",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "a funnel needs step=" in bad.stderr


# the answers of reports over more than 60 days arrive 1.5 s late (a slow 90-day query)
_SLOW_LONG_RANGES = """{
  const f = window.fetch;
  window.fetch = (u, ...a) => {
    const q = new URL(String(u), location.href).searchParams;
    const days = (Date.parse(q.get("to")) - Date.parse(q.get("from"))) / 864e5;
    return days > 60 ? new Promise((r) => setTimeout(r, 1500)).then(() => f(u, ...a)) : f(u, ...a);
  };
}"""


def test_dashboard_late_answer_does_not_overwrite_newer_range(served: Served) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()  # type: ignore[attr-defined]
        page.add_init_script(_SLOW_LONG_RANGES)
        page.goto(served.url + "/#report=overview&site=demo")
        _wait_loaded(page, "overview")
        page.click(".quick button[data-days='90']")
        page.click(".quick button[data-days='7']")
        page.wait_for_timeout(2500)  # the 90-day answer has come in by now
        fr, to = page.input_value("#from"), page.input_value("#to")
        status = page.inner_text("#status")
        week = httpx.get(
            f"{served.url}/api/reports/overview", params={"site": "demo", "from": fr, "to": to}
        ).json()
        shown = int(page.inner_text(".card .v").replace(",", ""))
        browser.close()  # type: ignore[attr-defined]
    assert f"{fr} to {to}" in status, f"the inputs say {fr}..{to}, the figures: {status}"
    assert shown == week["totals"]["visitors"]


def _csv_rows(url: str) -> list[list[str]]:
    r = httpx.get(url, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    return list(csv.reader(io.StringIO(r.text)))[1:]


# each CSV link with the table it belongs to: the side of a transitions panel, else the panel
_CSV_LINKS = """() => [...document.querySelectorAll("#report a[download]")].map((a) => {
  const box = a.closest("h3") ? a.closest("h3").parentElement : a.closest("section");
  const t = box.querySelector("table");
  return { href: a.getAttribute("href"), rows: t ? t.querySelectorAll("tbody tr").length : null };
})"""


def test_dashboard_csv_links_export_the_tables_shown(served: Served) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()  # type: ignore[attr-defined]
        links: dict[str, list[dict[str, object]]] = {}
        for report in REPORTS[:-1]:  # customer lists are exported whole (for CRM import)
            page.goto(f"{served.url}/#report={report}&site=demo")
            _wait_loaded(page, report)
            links[report] = page.evaluate(_CSV_LINKS)
        # the transitions of a page: both sides, each with its own CSV
        page.goto(f"{served.url}/#report=paths&site=demo&page=%2Fcart")
        _wait_loaded(page, "paths")
        paths = page.evaluate(_CSV_LINKS)
        next_pages = page.locator(".transitions > div:last-child tbody td:first-child")
        went_to = next_pages.all_inner_texts()
        # a site without traffic: no bounce rate, not 0.0 %
        page.goto(f"{served.url}/#report=overview&site=no-traffic")
        _wait_loaded(page, "overview")
        empty_cards = dict(
            zip(
                page.locator(".card .k").all_inner_texts(),
                page.locator(".card .v").all_inner_texts(),
                strict=True,
            )
        )
        browser.close()  # type: ignore[attr-defined]
    for report, found in links.items():
        for link in found:
            if link["rows"] is None:  # a chart's CSV: its series
                continue
            rows = _csv_rows(served.url + str(link["href"]))
            assert len(rows) == link["rows"], f"{report}: {link}"
    tables = [str(link["href"]).split("table=")[1].split("&")[0] for link in paths]
    assert tables == ["previous", "next", "top_paths"]
    assert [r[0] for r in _csv_rows(served.url + str(paths[1]["href"]))] == went_to
    assert empty_cards["bounce rate"] == "–" and empty_cards["visitors"] == "0"


def test_dashboard_url_with_unknown_report_or_empty_step(served: Served) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # an old bookmark or a typo: the overview, and the URL says so
        page.goto(served.url + "/#report=bogus&site=demo")
        _wait_loaded(page, "overview")
        url = page.url
        tab = page.inner_text("#tabs a.active")
        # step= with nothing: the default steps the form shows, not an error
        page.goto(served.url + "/#report=funnel&site=demo&step=")
        status = _wait_loaded(page, "funnel")
        shown_steps = page.input_value("#extra [name=step]").splitlines()
        counted = page.locator("section.panel:nth-of-type(2) tbody tr td:first-child")
        counted_steps = counted.all_inner_texts()
        browser.close()  # type: ignore[attr-defined]
    assert errors == []
    assert "report=overview" in url and tab == "Overview"
    assert "error" not in status and shown_steps == counted_steps and len(shown_steps) == 5


def test_csv_of_every_table_has_its_header_even_without_rows(served: Served) -> None:
    from reports.run import COLUMNS

    extra = {
        "funnel": [("step", "/"), ("step", "/cart"), ("breakdown", "channel")],
        "customers": [("crm_id", "cust-3468")],
    }
    seen = set()
    for report, columns in COLUMNS.items():
        params = [("site", "demo"), *extra.get(report, [])]
        body = httpx.get(f"{served.url}/api/reports/{report}", params=params, timeout=60).json()
        for table, cols in columns.items():
            assert isinstance(body[table], list), (report, table)
            if body[table]:  # the registry says what the shape writes
                assert tuple(body[table][0]) == cols, (report, table)
                seen.add((report, table))
            r = httpx.get(
                f"{served.url}/api/reports/{report}",
                params=[*params, ("format", "csv"), ("table", table)],
                timeout=60,
            )
            assert r.text.splitlines()[0] == ",".join(cols), (report, table)
    assert len(seen) >= 20  # most tables have rows in the demo traffic


def test_dashboard_default_range_is_the_apis_not_the_browser_clock(served: Served) -> None:
    """Without a range in the URL the dashboard shows the API's default (30 days to today in
    the site's time zone); a browser whose clock or zone says another day changes nothing."""
    import datetime as dt

    from playwright.sync_api import sync_playwright

    api = httpx.get(f"{served.url}/api/reports/overview", params={"site": "demo"}).json()
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(timezone_id="Pacific/Kiritimati")  # type: ignore[attr-defined]
        page.clock.set_fixed_time(dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
        page.goto(served.url + "/")
        status = _wait_loaded(page, "overview")
        fr, to, url = page.input_value("#from"), page.input_value("#to"), page.url
        # the site chosen for the bare URL replaces it: no history entry that Back would show
        # as an empty 'Pick a site' page
        entries = page.evaluate("history.length")
        visitors = int(page.inner_text(".card .v").replace(",", ""))
        # a blank date falls back to the default instead of blocking the form
        page.fill("#from", "")
        page.fill("#to", "")
        page.click("button.go")
        page.wait_for_timeout(300)
        status_blank = _wait_loaded(page, "overview")
        browser.close()  # type: ignore[attr-defined]
    assert (fr, to) == (api["query"]["from"], api["query"]["to"]), status
    assert f"from={fr}" in url and f"to={to}" in url and "site=demo" in url
    assert entries == 2  # about:blank, the dashboard
    assert visitors == api["totals"]["visitors"]
    assert f"{fr} to {to}" in status_blank
