"""Sessionizer fixtures on top of the shared ones (tests/conftest.py): the one chDB
engine of this process (``ch``) under shorter names, and its path for CLI runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import warehouse


@pytest.fixture
def client(ch: Client) -> Client:
    return ch


@pytest.fixture
def db(database: str) -> str:
    return database


@pytest.fixture
def chdb_path(ch: Client) -> Path:
    """The engine path behind ``ch`` (a CLI run in this process must use the same one)."""
    dsn = next(d for d, c in warehouse._CLIENTS.items() if c is ch)
    return Path(dsn.removeprefix("chdb://"))
