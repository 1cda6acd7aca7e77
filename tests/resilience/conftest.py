from __future__ import annotations

from collections.abc import Iterator

import pytest

from clickstream.broker import EmbeddedBroker, free_port


@pytest.fixture
def broker(tmp_path) -> Iterator[EmbeddedBroker]:
    """A real Tansu broker (memory storage) on a fixed port, so a test can stop and restart it."""
    b = EmbeddedBroker(free_port(), log_path=tmp_path / "broker.log").start()
    yield b
    b.stop()
