from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from clickstream import warehouse

_n = itertools.count(1)


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def client(chdb_path: Path) -> Client:
    """One chDB engine for the whole test process (chDB allows one per process)."""
    return warehouse.connect(f"chdb://{chdb_path}")


@pytest.fixture
def db(client: Client) -> Iterator[str]:
    """A fresh database with the schema, per test."""
    name = f"t_sz_{next(_n)}"
    warehouse.migrate(client, name)
    yield name
    with warehouse.CHDB_LOCK:
        client.command(f"DROP DATABASE IF EXISTS {name}")
