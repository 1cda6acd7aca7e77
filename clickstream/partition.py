"""Which partition a hit goes to: Kafka's default (murmur2) partitioner, faster.

Every producer of hits keys a record by ``site|visitor_id`` and partitions it the way
the Java client and aiokafka's ``DefaultPartitioner`` do (``murmur2(key) & 0x7fffffff``
modulo the partition count), so that one visitor's hits meet on one partition whoever
produced them.  The collector builds its Kafka batches itself (one per partition per
event-loop tick) and so picks the partition itself: this module does it in about a
quarter of aiokafka's pure-Python time, and remembers recent keys.
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_CACHE_MAX = 65536
_cache: dict[tuple[bytes, int], int] = {}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), unsigned 32-bit."""
    length = len(data)
    h = 0x9747B28C ^ length
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        rest = data[words * 4 :]
        if tail >= 3:
            h ^= rest[2] << 16
        if tail >= 2:
            h ^= rest[1] << 8
        h = ((h ^ rest[0]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition (0..partitions-1) of a key, as Kafka's default partitioner picks it."""
    hit = _cache.get((key, partitions))
    if hit is not None:
        return hit
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    p = _cache[(key, partitions)] = (murmur2(key) & 0x7FFFFFFF) % partitions
    return p
