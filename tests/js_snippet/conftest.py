"""Fixtures of the tracker tests: real Debian Chromium, a recording collector, a page server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.js_snippet.chromium import launch
from tests.js_snippet.recorder import Recorder, Server, Web, collector_app, site_app


# package scope: the sync API keeps an event loop running in the main thread while it is
# open, which would break every asyncio test collected after this package
@pytest.fixture(scope="package")
def playwright() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: object) -> Iterator[object]:
    browser = launch(playwright)
    yield browser
    browser.close()  # type: ignore[attr-defined]


@pytest.fixture
def context(browser: object) -> Iterator[object]:
    ctx = browser.new_context()  # type: ignore[attr-defined]
    yield ctx
    ctx.close()


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
