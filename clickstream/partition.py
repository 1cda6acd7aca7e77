"""Which partition a hit goes to: Kafka's default (murmur2) partitioner, faster.

Every producer of hits keys a record by ``site|visitor_id`` and partitions it the way
the Java client and aiokafka's ``DefaultPartitioner`` do (``murmur2(key) & 0x7fffffff``
modulo the partition count), so that one visitor's hits meet on one partition whoever
produced them.  The collector builds its Kafka batches itself (one per partition per
event-loop tick) and so picks the partition itself: this module does it in about a
quarter of aiokafka's pure-Python time, remembers recent keys, and hashes a commit's new
keys of one length together with numpy (uint32 arithmetic wraps like Java's int).
"""

from __future__ import annotations

import struct

import numpy as np

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


VECTOR_MIN = 16  # fewer new keys of one length: the per-key loop is cheaper than numpy's calls


def partitions_for(keys: list[bytes], partitions: int) -> list[int]:
    """``partition_for`` of many keys at once (a group commit's)."""
    out: list[int] = [0] * len(keys)
    todo: dict[int, list[int]] = {}  # key length -> positions of keys not in the cache
    for i, key in enumerate(keys):
        hit = _cache.get((key, partitions))
        if hit is None:
            todo.setdefault(len(key), []).append(i)
        else:
            out[i] = hit
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    for length, idx in todo.items():
        if len(idx) < VECTOR_MIN or length < 4:
            for i in idx:
                out[i] = partition_for(keys[i], partitions)
            continue
        hashed = _murmur2_many([keys[i] for i in idx], length)
        for i, h in zip(idx, ((hashed & 0x7FFFFFFF) % partitions).tolist(), strict=True):
            out[i] = _cache[(keys[i], partitions)] = h
    return out


def _murmur2_many(keys: list[bytes], length: int) -> np.ndarray:
    """murmur2 of keys that all have ``length`` bytes, as a uint32 array."""
    m = np.uint32(_M)
    raw = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), length)
    words = length // 4
    body = raw[:, : words * 4].copy().view("<u4")
    h = np.full(len(keys), (0x9747B28C ^ length) & _MASK, dtype=np.uint32)
    for w in range(words):
        k = body[:, w] * m
        k ^= k >> np.uint32(24)
        k *= m
        h *= m
        h ^= k
    tail = length & 3
    if tail:
        rest = raw[:, words * 4 :].astype(np.uint32)
        if tail >= 3:
            h ^= rest[:, 2] << np.uint32(16)
        if tail >= 2:
            h ^= rest[:, 1] << np.uint32(8)
        h ^= rest[:, 0]
        h *= m
    h ^= h >> np.uint32(13)
    h *= m
    h ^= h >> np.uint32(15)
    return h
