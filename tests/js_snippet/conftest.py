"""Fixtures of the tracker tests: real Debian Chromium, a recording collector, a page server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from js_recorder import Recorder, Server, collector_app, page_html, site_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SITE = "shop"


def launch(playwright: object, bfcache: bool = False) -> object:
    """Chromium as the tests use it; ``bfcache=True`` keeps the back-forward cache on
    (Playwright turns it off by default)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    return playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        ignore_default_args=["--disable-back-forward-cache"] if bfcache else None,
    )


@pytest.fixture(scope="session")
def playwright() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: object) -> Iterator[object]:
    browser = launch(playwright)
    yield browser
    browser.close()  # type: ignore[attr-defined]


@pytest.fixture
def context(browser: object) -> Iterator[object]:
    ctx = browser.new_context()  # type: ignore[attr-defined]
    yield ctx
    ctx.close()


@dataclass
class Web:
    """The two origins of a test: pages on ``site_url``, hits recorded from ``collector_url``."""

    collector_url: str
    site_url: str
    recorder: Recorder
    pages: dict[str, str] = field(default_factory=dict)

    def page(self, path: str, title: str, body: str = "", before: str = "", **kw: bool) -> str:
        """Serve a page with the snippet at ``path``; returns its absolute URL."""
        self.pages[path] = page_html(SITE, self.collector_url, title, body, before, **kw)
        return self.site_url + path

    def raw(self, path: str, html: str) -> str:
        self.pages[path] = html
        return self.site_url + path


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[Recorder, dict[str, str], str, str]]:
    recorder = Recorder()
    pages: dict[str, str] = {}
    with Server(collector_app(recorder)) as coll, Server(site_app(pages)) as site:
        yield recorder, pages, coll.url, site.url


@pytest.fixture
def web(servers: tuple[Recorder, dict[str, str], str, str]) -> Iterator[Web]:
    recorder, pages, collector_url, site_url = servers
    recorder.clear()
    pages.clear()
    yield Web(collector_url, site_url, recorder, pages)
    recorder.clear()
