"""Debian Chromium as the tracker tests launch it (never Playwright's own browser build)."""

from __future__ import annotations

import os

import pytest

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
