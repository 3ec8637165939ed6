"""How far a consumer running records concurrently may commit: never past one still running.

Records of a partition start in offset order but may finish in any order. The
safe offset to commit is the first one still running, or one past the last
started when none is. Offsets may have gaps (compaction, transaction markers),
so this never assumes `offset + 1` is the next record. This is what faust
issue #606 gets wrong with agent concurrency > 1: a crash loses the records
it committed past.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class PartitionOffsets:
    """The records of one partition that started, and which of them are still running."""

    __slots__ = ("_committed", "_in_flight", "_next")

    def __init__(self) -> None:
        self._in_flight: set[int] = set()
        self._next: int | None = None
        self._committed: int | None = None

    def start(self, offset: int) -> None:
        """The record at `offset` started running."""
        self._in_flight.add(offset)
        # A consumer reset to an earlier position re-reads records: never move backwards.
        self._next = offset + 1 if self._next is None else max(self._next, offset + 1)

    def finish(self, offset: int) -> None:
        """The record at `offset` is done: its result is delivered."""
        self._in_flight.discard(offset)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def safe(self) -> int | None:
        """The offset to commit (the next record to read after a restart); None before any record."""
        if self._in_flight:
            return min(self._in_flight)
        return self._next

    @property
    def committed(self) -> int | None:
        return self._committed

    def mark_committed(self, offset: int) -> None:
        self._committed = offset


class OffsetTracker(Generic[K]):
    """Offsets of every partition this consumer runs records from, keyed by partition."""

    def __init__(self) -> None:
        self._partitions: dict[K, PartitionOffsets] = {}

    def partition(self, key: K) -> PartitionOffsets:
        """The offsets of `key`, created on first use."""
        offsets = self._partitions.get(key)
        if offsets is None:
            offsets = self._partitions[key] = PartitionOffsets()
        return offsets

    def to_commit(self, keys: Iterable[K] | None = None) -> dict[K, int]:
        """Safe offsets that moved since the last commit (of `keys`, or of every partition)."""
        chosen = self._partitions if keys is None else (k for k in keys if k in self._partitions)
        commits: dict[K, int] = {}
        for key in chosen:
            offsets = self._partitions[key]
            safe = offsets.safe
            if safe is not None and safe != offsets.committed:
                commits[key] = safe
        return commits

    def mark_committed(self, commits: dict[K, int]) -> None:
        """Record that `commits` reached the broker."""
        for key, offset in commits.items():
            offsets = self._partitions.get(key)
            if offsets is not None:
                offsets.mark_committed(offset)

    def forget(self, keys: Iterable[K]) -> None:
        """Stop tracking `keys` (partitions revoked). Records still running there are not
        counted any more: whoever owns the partition next reads them again."""
        for key in keys:
            self._partitions.pop(key, None)

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self._partitions.values())
