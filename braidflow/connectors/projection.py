"""Read models fed by following a whole topic, without a consumer group.

A read model is a cache of its topic: it keeps, in the same transaction as its
rows, the next offset to read of every partition, so a restart resumes exactly
where it stopped, and deleting it only costs a re-read. `TopicProjection`
does the following; `braidflow.connectors.read_model_db` is the database side
every such model shares (a SQLite file, or PostgreSQL shared by the workers).

Each projection reads through a librdkafka consumer: fetching and parsing happen in
librdkafka's threads, and a batch becomes Python objects in one C call. Through aiokafka,
every record cost about 1.8 µs of the event loop's thread (its fetch answers parsed in
Python, a `ConsumerRecord` each), and every worker reads every lifecycle event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, NamedTuple, Protocol, TypeVar

import confluent_kafka
from aiokafka import TopicPartition

from braidflow.batch_take import BatchTake
from braidflow.config import CONSUMER_QUEUE_KIB
from braidflow.connectors.read_model_db import fresh_records
from braidflow.fetch_stall import StallWatch, longer_wait, stalled
from braidflow.kafka_connection import KafkaConnection
from braidflow.partition_ends import fetched_ends

T = TypeVar("T")

log = logging.getLogger(__name__)

PARTITION_CHECK_S = 5.0
"""How often a projection looks for partitions added to its topic, unless told otherwise."""

_IDLE_WAIT_S = 1.0
BATCH_RECORDS = 2_000
"""Records a projection takes from its consumer at once, at most. Unbounded, a projection
behind its topic took all its consumer held, up to a mebibyte of each of 32 partitions, as
Python objects with their headers: a worker firing 30,000 parked timers held some 52,000
fetched records at once, most of them, by elimination, the execution index's."""
_RETRY_S = 1.0
_METADATA_TIMEOUT_S = 10.0
TOPIC_WAIT_S = 0.5
"""How often a projection whose topic has no partitions yet reads the cluster's metadata again."""


class Record(NamedTuple):
    """A record of a followed topic, as the read models read it (the fields of aiokafka's
    `ConsumerRecord` they use, by the same names)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


_record = partial(tuple.__new__, Record)
"""`Record` from a tuple of its fields, in one C call: its `__new__` is a Python function, and
every worker makes one for every lifecycle event."""


class MessageHeaders(Sequence[tuple[str, bytes]]):
    """A librdkafka message's headers, made Python objects when first read (confluent-kafka
    keeps them then): 7 - 8 µs a lifecycle record, more than the rest of its record, for
    headers most read models' readers of most records never look at (they read the event's
    id and type off its value)."""

    __slots__ = ("_message",)

    def __init__(self, message: Any) -> None:
        self._message = message

    def _read(self) -> Sequence[tuple[str, bytes]]:
        return self._message.headers() or ()

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def __getitem__(self, index: Any) -> Any:
        return self._read()[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self._read()) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self._read()))


class ProjectionStore(Protocol):
    """Where a `TopicProjection` keeps what it read, with the next offset of every partition."""

    def positions(self) -> dict[TopicPartition, int]: ...

    def reset(self) -> None: ...

    def claimed(
        self, partitions: Iterable[TopicPartition]
    ) -> AbstractContextManager[dict[TopicPartition, int]]: ...

    async def off_loop(self, call: Callable[..., T], *args: Any) -> T: ...


ApplyRecords = Callable[[Sequence[Record], Mapping[TopicPartition, int]], None]
"""Stores records read and the next offsets to read (`positions`), in one transaction: the
store's `claimed` one, which `TopicProjection` opens around it."""


class TopicProjection:
    """Follows every partition of a topic into a local store, through `apply`.

    No consumer group: every worker reads all partitions, from the positions
    kept in `store`. While the topic has no partitions known (not created yet)
    the metadata is read afresh every `TOPIC_WAIT_S`; partitions added later are
    picked up within `partition_check_s`. A store built from another log (another
    topic, or this one since recreated) is reset and rebuilt. `apply` must skip
    records it cannot read rather than raise: a read model must never stall on one.

    librdkafka's consumers need a consumer group, `group` (the worker gives the app's, which
    a cluster's ACLs allow already): the projection never joins it nor commits to it, but
    librdkafka looks up its coordinator. Unset, one named after the projection.
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
        group: str | None = None,
    ) -> None:
        self._store = store
        self._group = group
        self._apply_records = apply
        self._connection = connection
        self._topic = topic
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._name = name
        self._partition_check_s = partition_check_s
        self._consumer: confluent_kafka.Consumer | None = None
        # Offsets and metadata are asked on a client of their own: on the reading consumer's
        # connection a request waits behind its fetch, which the embedded broker holds for
        # the whole fetch wait (up to seconds once `_wait_longer` lengthened it), and a read
        # of the API waiting for the index to catch up waited that long first.
        self._queries: confluent_kafka.Consumer | None = None
        self._loop: asyncio.Task[None] | None = None
        self._next: dict[TopicPartition, int] = {}
        self._by_number: dict[int, TopicPartition] = {}
        self._progress = asyncio.Condition()
        self._assigning = asyncio.Lock()
        self._takes = BatchTake(BATCH_RECORDS)
        # Waits for records in a thread of its own: the four projections of a worker, mostly
        # idle, would otherwise hold most of the event loop's default threads.
        self._waiting: ThreadPoolExecutor | None = None
        self._stall = StallWatch()

    async def start(self) -> None:
        """Connect and start following the topic from the stored positions."""
        self._waiting = ThreadPoolExecutor(1, thread_name_prefix=f"{self._topic}-projection")
        self._takes = BatchTake(BATCH_RECORDS, self._waiting)
        self._queries = self._new_consumer("queries")
        consumer = self._consumer = self._new_consumer()
        try:
            await self._follow_new_partitions()
        except Exception:
            await self._close(consumer)
            raise
        self._loop = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        """Stop reading; everything applied so far is stored with its positions."""
        await self._takes.stop(self._loop)
        self._loop = None
        if self._consumer is not None:
            await self._close(self._consumer)

    def _new_consumer(self, role: str = "reader") -> confluent_kafka.Consumer:
        client = f"{self._topic}-{self._name.replace(' ', '-')}-{role}"
        return confluent_kafka.Consumer(
            self._connection.confluent(
                {
                    "group.id": self._group or client,
                    "client.id": client,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    # Used only when retention deleted records not yet read: take what is left.
                    "auto.offset.reset": "earliest",
                    "fetch.wait.max.ms": self._fetch_max_wait_ms,
                    "queued.max.messages.kbytes": CONSUMER_QUEUE_KIB,
                    # As asyncio's sockets (aiokafka's): a fetch request is never held back.
                    "socket.nagle.disable": True,
                }
            )
        )

    async def _close(self, consumer: confluent_kafka.Consumer) -> None:
        self._consumer = None
        await asyncio.to_thread(consumer.close)
        if self._queries is not None:
            await asyncio.to_thread(self._queries.close)
            self._queries = None
        if self._waiting is not None:
            self._waiting.shutdown(wait=False)
            self._waiting = None

    async def wait_caught_up(self, timeout_s: float) -> bool:
        """Whether, within `timeout_s`, the store has read up to the end offsets of now.

        Counts the partitions followed at the call, after reading the cluster's metadata
        afresh if none is followed yet: true at once while the topic does not exist.
        """
        if self._consumer is None:
            raise RuntimeError(f"the {self._name} projection is not started")
        if not self._next:
            await self._follow_new_partitions()
        partitions = list(self._next)
        ends = await self._offsets(partitions, confluent_kafka.OFFSET_END) if partitions else {}

        def caught_up() -> bool:
            return all(self._next.get(tp, 0) >= end for tp, end in ends.items())

        try:
            async with asyncio.timeout(timeout_s), self._progress:
                await self._progress.wait_for(caught_up)
        except TimeoutError:
            return False
        return True

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self._partition_check_s
        while True:
            consumer = self._consumer
            assert consumer is not None
            try:
                if loop.time() >= next_check:
                    next_check = loop.time() + self._partition_check_s
                    await self._follow_new_partitions()
                if not self._next:
                    await asyncio.sleep(TOPIC_WAIT_S)
                    await self._follow_new_partitions()
                    continue
                messages = consumer.consume(BATCH_RECORDS, 0) or await self._takes.wait(
                    consumer, _IDLE_WAIT_S
                )
                if stalled(self._stall, consumer, loop.time(), bool(messages)):
                    await self._wait_longer(consumer)
                    continue
                batch = self._batch(messages)
                if batch:
                    await self._apply(batch)
            except Exception:
                # The loop must outlive a broker or disk hiccup; whatever was read
                # but not stored is read again from the stored positions.
                log.exception("following %s failed; retrying", self._topic)
                await asyncio.sleep(_RETRY_S)
                with contextlib.suppress(Exception):
                    self._read_from(self._next)
                continue
            async with self._progress:
                self._progress.notify_all()

    def _batch(self, messages: list[Any]) -> dict[TopicPartition, list[Record]]:
        """`messages` as records by partition; errors are logged and skipped (librdkafka
        goes on fetching after them)."""
        topic, by_number = self._topic, self._by_number
        batch: dict[TopicPartition, list[Record]] = {}
        for m in messages:
            error = m.error()
            if error is not None:
                log.warning("following %s: %s", topic, error)
                continue
            partition = m.partition()
            headers = MessageHeaders(m)
            record = _record((topic, partition, m.offset(), m.key(), m.value(), headers))
            records = batch.get(by_number[partition])
            if records is None:
                batch[by_number[partition]] = [record]
            else:
                records.append(record)
        return batch

    async def _wait_longer(self, consumer: confluent_kafka.Consumer) -> None:
        """The consumer made again with a longer fetch wait, reading on from the positions
        stored (see `braidflow.fetch_stall`)."""
        wait = longer_wait(self._fetch_max_wait_ms)
        if wait is None:
            return
        log.warning(
            "following %s: fetches at %d ms bring no records the broker has; waiting %d ms",
            self._topic,
            self._fetch_max_wait_ms,
            wait,
        )
        await asyncio.to_thread(consumer.close)
        self._fetch_max_wait_ms = wait
        self._consumer = self._new_consumer()
        self._read_from(self._next)

    async def _apply(self, batch: Mapping[TopicPartition, list[Record]]) -> None:
        records = [record for partition_records in batch.values() for record in partition_records]
        positions = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
        await self._store.off_loop(self._store_batch, records, positions)
        self._next.update(positions)

    def _store_batch(
        self, records: Sequence[Record], positions: Mapping[TopicPartition, int]
    ) -> None:
        # Another worker sharing the store may have stored part of the batch already.
        with self._store.claimed(positions) as stored:
            self._apply_records(fresh_records(records, stored), positions)

    def _read_from(self, positions: Mapping[TopicPartition, int]) -> None:
        """Fetch every partition of `positions` from its offset there (and nothing else)."""
        assert self._consumer is not None
        self._consumer.assign(
            [
                confluent_kafka.TopicPartition(tp.topic, tp.partition, offset)
                for tp, offset in sorted(positions.items())
            ]
        )

    async def _offsets(
        self, partitions: Iterable[TopicPartition], which: int
    ) -> dict[TopicPartition, int]:
        """The beginning (`OFFSET_BEGINNING`) or end (`OFFSET_END`) offsets of `partitions`,
        in one request per broker."""
        queries = self._queries
        assert queries is not None
        asked = [confluent_kafka.TopicPartition(tp.topic, tp.partition, which) for tp in partitions]
        found = await asyncio.to_thread(queries.offsets_for_times, asked, _METADATA_TIMEOUT_S)
        for each in found:
            if each.error is not None:
                raise confluent_kafka.KafkaException(each.error)
        return {TopicPartition(each.topic, each.partition): each.offset for each in found}

    async def _partitions(self) -> set[TopicPartition]:
        """The topic's partitions, from the cluster's metadata read now."""
        queries = self._queries
        assert queries is not None
        # Asked by name only once it exists: asking for a missing topic by name would create
        # it on a broker that creates the topics it is asked about.
        listed = await asyncio.to_thread(
            queries.list_topics, self._topic if self._next else None, _METADATA_TIMEOUT_S
        )
        found = listed.topics.get(self._topic)
        if found is None or found.error is not None:
            return set()
        return {TopicPartition(self._topic, p) for p in found.partitions}

    async def _follow_new_partitions(self) -> None:
        """Assign every partition of the topic, reading each from its stored position."""
        async with self._assigning:
            await self._assign_new_partitions()

    async def _assign_new_partitions(self) -> None:
        partitions = await self._partitions()
        added = partitions - self._next.keys()
        if not added:
            return
        beginnings = await self._offsets(added, confluent_kafka.OFFSET_BEGINNING)
        stored = await self._store.off_loop(self._store.positions)
        if not self._next and await self._built_from_another_log(stored, partitions):
            log.warning(
                "the %s at hand was not built from %s as it is now"
                " (another topic, or the topic was recreated); rebuilding it",
                self._name,
                self._topic,
            )
            await self._store.off_loop(self._store.reset)
            stored = {}
        for tp in added:
            self._next[tp] = max(stored.get(tp, 0), beginnings[tp])
            self._by_number[tp.partition] = tp
        # assign() replaces the whole assignment, and with it every fetch position.
        self._read_from(self._reading_from(added, beginnings))
        log.info("following %d partitions of %s", len(partitions), self._topic)

    def _reading_from(
        self, added: Iterable[TopicPartition], beginnings: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """Where each partition followed is read from once `added` are: its stored
        position; `beginnings` are those of `added`."""
        return dict(self._next)

    async def _built_from_another_log(
        self, stored: Mapping[TopicPartition, int], partitions: set[TopicPartition]
    ) -> bool:
        if any(tp.topic != self._topic for tp in stored):
            return True
        ends = await self._offsets(partitions, confluent_kafka.OFFSET_END)
        # Past the end: the log was recreated (or truncated) since the store read it.
        reported = {(tp.topic, tp.partition): ends.get(tp, 0) for tp in stored}
        if all(offset <= reported[tp.topic, tp.partition] for tp, offset in stored.items()):
            return False
        # The embedded broker reports less than a partition's end when its last batch held
        # several records: a store at the true end looked past it, and of two workers sharing
        # a PostgreSQL read model the second to start rebuilt what the first had just stored.
        group = self._group or f"{self._topic}-{self._name.replace(' ', '-')}-ends"
        true_ends = await asyncio.to_thread(
            fetched_ends, self._connection, reported, _METADATA_TIMEOUT_S, group
        )
        return any(
            offset > true_ends.get((tp.topic, tp.partition), 0) for tp, offset in stored.items()
        )
