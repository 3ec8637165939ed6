"""Kafka's default key partitioner (murmur2, as the Java client and Faust use), remembering hashes.

Every record of an execution (its transitions, tasks, lifecycle events) is
keyed by the execution id, so a worker hashes the same few thousand keys over
and over; aiokafka's murmur2 is pure Python and took about 4% of a loaded
worker's time.
"""

from __future__ import annotations

import random

from aiokafka.partitioner import murmur2

HASHES_KEPT = 100_000


class KeyPartitioner:
    """Picks the partition of a key exactly as the default partitioner does."""

    def __init__(self, capacity: int = HASHES_KEPT) -> None:
        self._hashes: dict[bytes, int] = {}
        self._capacity = capacity

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            hashed = murmur2(key) & 0x7FFFFFFF
            if len(self._hashes) >= self._capacity:
                # Dropping all at once keeps the hot path a single dict lookup;
                # the keys still in use are hashed again on their next record.
                self._hashes.clear()
            self._hashes[key] = hashed
        return all_partitions[hashed % len(all_partitions)]
