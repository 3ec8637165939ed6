"""The commits of a group consumer that runs many records at once (streams/offsets.py).

Each partition is committed only up to its first record not finished, so a worker killed
at any moment leaves every unfinished record to be read again: at least once. Commits go
out every `interval_s`, before a partition is revoked (then it is forgotten: its new owner
reads again what was still running here) and at stop, once the records are drained. A
failed commit is logged and tried again at the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Any, Protocol

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from braidflow.streams.offsets import OffsetTracker, PartitionOffsets

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 1.0
"""How often finished offsets are committed; also on revoke and on stop. Shorter means
fewer records handled again after a crash."""


class GroupConsumer(Protocol):
    """What is committed through: an `AIOKafkaConsumer` in a group, with auto commit off."""

    def subscribe(
        self, topics: Collection[str], *, listener: ConsumerRebalanceListener
    ) -> None: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> Any: ...


class Commits:
    """Commits the records of `group_id` as they finish, never past one still running."""

    def __init__(self, group_id: str, interval_s: float = COMMIT_INTERVAL_S) -> None:
        self._group_id = group_id
        self._interval_s = interval_s
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        # One commit at a time: a revoke's commit must not race a periodic one.
        self._lock = asyncio.Lock()
        self._consumer: GroupConsumer | None = None
        self._periodic: asyncio.Task[None] | None = None

    def follow(self, consumer: GroupConsumer, topics: Collection[str]) -> None:
        """Subscribe the started `consumer` to `topics` and commit its offsets from now on."""
        consumer.subscribe(topics, listener=_CommitOnRevoke(self))
        self._consumer = consumer
        self._periodic = asyncio.create_task(self._commit_periodically())

    def started(self, record: ConsumerRecord[bytes, bytes]) -> PartitionOffsets:
        """Count `record` as running; `finish` its offset on what is returned once it is done."""
        offsets = self._tracker.partition(TopicPartition(record.topic, record.partition))
        offsets.start(record.offset)
        return offsets

    async def stop(self) -> None:
        """Commit what is finished, for the last time: call once the records in flight are
        drained or abandoned, before the consumer stops."""
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic
            self._periodic = None
        await self.commit()
        self._consumer = None

    async def commit(self, partitions: Collection[TopicPartition] | None = None) -> None:
        """Commit the safe offsets of `partitions` (default: all) that moved since last time."""
        consumer = self._consumer
        if consumer is None:
            return
        async with self._lock:
            offsets = self._tracker.to_commit(partitions)
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                # A rebalance under way, usually; the revoke hook or the next round commits.
                log.warning("group %s: commit of %s failed: %r", self._group_id, offsets, exc)
                return
            self._tracker.mark_committed(offsets)

    async def revoked(self, partitions: Collection[TopicPartition]) -> None:
        """Commit what is finished of `partitions`, then forget them."""
        await self.commit(partitions)
        # Records still running there finish, uncounted: whoever owns the partition
        # next reads them again (at least once).
        self._tracker.forget(partitions)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.commit()


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, commits: Commits) -> None:
        self._commits = commits

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._commits.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        pass
