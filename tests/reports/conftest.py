from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import warehouse

_dbs = itertools.count(1)


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory: pytest.TempPathFactory) -> Client:
    # chDB allows one engine per process: reuse one another test package opened.
    for dsn, client in warehouse._CLIENTS.items():
        if dsn.startswith("chdb://"):
            return client
    return warehouse.connect(f"chdb://{tmp_path_factory.mktemp('chdb-reports')}")


@pytest.fixture(scope="module")
def fresh_db(chdb_client: Client) -> Callable[[], str]:
    """Makes a new migrated database (distinct name) in the shared engine."""

    def make() -> str:
        name = f"t_reports_{next(_dbs)}"
        warehouse.migrate(chdb_client, database=name)
        return name

    return make
