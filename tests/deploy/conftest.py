from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import warehouse


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The process's chDB engine (one per process): reuse one already opened, else open one."""
    for dsn, client in warehouse._CLIENTS.items():
        if dsn.startswith("chdb://"):
            yield client
            return
    yield warehouse.connect(f"chdb://{tmp_path_factory.mktemp('deploy-chdb')}")
