"""The collector's partitioner is Kafka's default one (murmur2), so every producer agrees."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from clickstream import partition as P
from clickstream.partition import murmur2, partition_for, partitions_for


@given(st.binary(max_size=300))
def test_murmur2_equals_kafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.binary(min_size=1, max_size=200), st.integers(1, 64))
def test_partition_equals_the_default_partitioner(key: bytes, partitions: int) -> None:
    ids = list(range(partitions))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, ids, ids)
    assert partition_for(key, partitions) == DefaultPartitioner()(key, ids, ids)  # cached


def test_known_values() -> None:
    # Java's Utils.murmur2 reference values (kafka clients' UtilsTest)
    assert murmur2(b"21") & 0xFFFFFFFF == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") & 0xFFFFFFFF == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") & 0xFFFFFFFF == (-985981536) & 0xFFFFFFFF
    assert murmur2(b"") & 0xFFFFFFFF == 275646681


@given(st.lists(st.binary(max_size=60), max_size=80), st.integers(1, 12), st.integers(0, 50))
def test_many_keys_at_once_agree_with_one_at_a_time(
    keys: list[bytes], partitions: int, same: int
) -> None:
    keys = keys + [bytes([i]) * 38 for i in range(same)]  # a commit's worth of one length: numpy
    P._cache.clear()
    ids = list(range(partitions))
    assert partitions_for(keys, partitions) == [DefaultPartitioner()(k, ids, ids) for k in keys]
