"""Read models fed by following a whole topic, without a consumer group.

A read model is a cache of its topic: it keeps, in the same transaction as its
rows, the next offset to read of every partition, so a restart resumes exactly
where it stopped, and deleting it only costs a re-read. `TopicProjection`
does the following; `braidflow.connectors.read_model_db` is the database side
every such model shares (a SQLite file, or PostgreSQL shared by the workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from braidflow.connectors.read_model_db import fresh_records
from braidflow.kafka_connection import KafkaConnection

T = TypeVar("T")

log = logging.getLogger(__name__)

PARTITION_CHECK_S = 5.0
"""How often a projection looks for partitions added to its topic, unless told otherwise."""

_POLL_TIMEOUT_MS = 1_000
BATCH_RECORDS = 2_000
"""Records a projection takes from its consumer at once, at most. Unbounded, a projection
behind its topic took all its consumer held, up to a mebibyte of each of 32 partitions, as
Python objects with their headers: a worker firing 30,000 parked timers held some 52,000
fetched records at once, most of them, by elimination, the execution index's."""
_RETRY_S = 1.0
TOPIC_WAIT_S = 0.5
"""How often a projection whose topic has no partitions yet reads the cluster's metadata again."""


class ProjectionStore(Protocol):
    """Where a `TopicProjection` keeps what it read, with the next offset of every partition."""

    def positions(self) -> dict[TopicPartition, int]: ...

    def reset(self) -> None: ...

    def claimed(
        self, partitions: Iterable[TopicPartition]
    ) -> AbstractContextManager[dict[TopicPartition, int]]: ...

    async def off_loop(self, call: Callable[..., T], *args: Any) -> T: ...


ApplyRecords = Callable[
    [Sequence[ConsumerRecord[bytes, bytes]], Mapping[TopicPartition, int]], None
]
"""Stores records read and the next offsets to read (`positions`), in one transaction: the
store's `claimed` one, which `TopicProjection` opens around it."""


class TopicProjection:
    """Follows every partition of a topic into a local store, through `apply`.

    No consumer group: every worker reads all partitions, from the positions
    kept in `store`. While the topic has no partitions known (not created yet, or
    not yet in the client's metadata) the metadata is read afresh every
    `TOPIC_WAIT_S`; partitions added later are picked up within `partition_check_s`.
    A store built from another log (another topic, or this one since recreated) is
    reset and rebuilt. `apply` must skip records it cannot read rather than raise:
    a read model must never stall on one.
    """

    def __init__(
        self,
        store: ProjectionStore,
        apply: ApplyRecords,
        connection: KafkaConnection,
        topic: str,
        fetch_max_wait_ms: int = 100,
        *,
        name: str,
        partition_check_s: float = PARTITION_CHECK_S,
    ) -> None:
        self._store = store
        self._apply_records = apply
        self._connection = connection
        self._topic = topic
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._name = name
        self._partition_check_s = partition_check_s
        self._consumer: AIOKafkaConsumer | None = None
        self._loop: asyncio.Task[None] | None = None
        self._next: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        self._assigning = asyncio.Lock()

    async def start(self) -> None:
        """Connect and start following the topic from the stored positions."""
        consumer = AIOKafkaConsumer(
            **self._connection.aiokafka(f"{self._topic}-{self._name.replace(' ', '-')}"),
            group_id=None,
            enable_auto_commit=False,
            # Used only when retention deleted records not yet read: take what is left.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            # Refreshing metadata this often is how new partitions become visible.
            metadata_max_age_ms=int(self._partition_check_s * 1000),
        )
        await consumer.start()
        self._consumer = consumer
        try:
            await self._follow_new_partitions(consumer)
        except Exception:
            await consumer.stop()
            self._consumer = None
            raise
        self._loop = asyncio.create_task(self._poll(consumer))

    async def stop(self) -> None:
        """Stop reading; everything applied so far is stored with its positions."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def wait_caught_up(self, timeout_s: float) -> bool:
        """Whether, within `timeout_s`, the store has read up to the end offsets of now.

        Counts the partitions followed at the call, after reading the cluster's metadata
        afresh if none is followed yet: true at once while the topic does not exist.
        """
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError(f"the {self._name} projection is not started")
        if not self._next:
            await self._follow_new_partitions(consumer)
        partitions = list(self._next)
        ends = await consumer.end_offsets(partitions) if partitions else {}

        def caught_up() -> bool:
            return all(self._next.get(tp, 0) >= end for tp, end in ends.items())

        try:
            async with asyncio.timeout(timeout_s), self._progress:
                await self._progress.wait_for(caught_up)
        except TimeoutError:
            return False
        return True

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self._partition_check_s
        while True:
            try:
                if loop.time() >= next_check:
                    next_check = loop.time() + self._partition_check_s
                    await self._follow_new_partitions(consumer)
                if not self._next:
                    await asyncio.sleep(TOPIC_WAIT_S)
                    await self._follow_new_partitions(consumer)
                    continue
                batch = await consumer.getmany(
                    timeout_ms=_POLL_TIMEOUT_MS, max_records=BATCH_RECORDS
                )
                if batch:
                    await self._apply(batch)
            except Exception:
                # The loop must outlive a broker or disk hiccup; whatever was read
                # but not stored is read again from the stored positions.
                log.exception("following %s failed; retrying", self._topic)
                await asyncio.sleep(_RETRY_S)
                with contextlib.suppress(Exception):
                    for tp, offset in self._next.items():
                        consumer.seek(tp, offset)
                continue
            async with self._progress:
                self._progress.notify_all()

    async def _apply(
        self, batch: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        records = [record for partition_records in batch.values() for record in partition_records]
        positions = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
        await self._store.off_loop(self._store_batch, records, positions)
        self._next.update(positions)

    def _store_batch(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        positions: Mapping[TopicPartition, int],
    ) -> None:
        # Another worker sharing the store may have stored part of the batch already.
        with self._store.claimed(positions) as stored:
            self._apply_records(fresh_records(records, stored), positions)

    async def _follow_new_partitions(self, consumer: AIOKafkaConsumer) -> None:
        """Assign every partition of the topic, reading each from its stored position."""
        async with self._assigning:
            await self._assign_new_partitions(consumer)

    async def _assign_new_partitions(self, consumer: AIOKafkaConsumer) -> None:
        if not consumer.partitions_for_topic(self._topic):
            # The client's metadata is a cache: filled at its start with no topics at all
            # (aiokafka asks for none, and Apache Kafka answers none; Tansu answers all),
            # then every metadata_max_age_ms. aiokafka has no public way to refresh it.
            # While nothing is assigned the client tracks no topic, so this asks for all
            # of them: asking for this one by name would create it on a broker that
            # creates the topics it is asked about.
            await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(self._topic) or set()
        partitions = {TopicPartition(self._topic, p) for p in found}
        added = partitions - self._next.keys()
        if not added:
            return
        beginnings = await consumer.beginning_offsets(list(added))
        stored = await self._store.off_loop(self._store.positions)
        if not self._next and await self._built_from_another_log(consumer, stored, partitions):
            log.warning(
                "the %s at hand was not built from %s as it is now"
                " (another topic, or the topic was recreated); rebuilding it",
                self._name,
                self._topic,
            )
            await self._store.off_loop(self._store.reset)
            stored = {}
        # assign() replaces the whole assignment, and with it every fetch position.
        consumer.assign(sorted(partitions))
        for tp in added:
            self._next[tp] = max(stored.get(tp, 0), beginnings[tp])
        for tp, offset in self._next.items():
            consumer.seek(tp, offset)
        log.info("following %d partitions of %s", len(partitions), self._topic)

    async def _built_from_another_log(
        self,
        consumer: AIOKafkaConsumer,
        stored: Mapping[TopicPartition, int],
        partitions: set[TopicPartition],
    ) -> bool:
        if any(tp.topic != self._topic for tp in stored):
            return True
        ends = await consumer.end_offsets(list(partitions))
        # Past the end: the log was recreated (or truncated) since the store read it.
        return any(offset > ends.get(tp, 0) for tp, offset in stored.items())
