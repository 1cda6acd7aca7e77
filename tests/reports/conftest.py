from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import warehouse

_dbs = itertools.count(1)


@pytest.fixture(scope="session")
def chdb_client(ch: Client) -> Client:
    """The process's one chDB engine (tests/conftest.py); report tests use their own databases."""
    return ch


@pytest.fixture(scope="module")
def fresh_db(chdb_client: Client) -> Callable[[], str]:
    """Makes a new migrated database (distinct name) in the shared engine."""

    def make() -> str:
        name = f"t_reports_{next(_dbs)}"
        warehouse.migrate(chdb_client, database=name)
        return name

    return make
