"""The transitions topic read by a plain aiokafka consumer on the worker's loop, not by Faust.

Faust's consumer names every partition of every agent's topic in one fetch, and the embedded
broker answered it 2.2-2.7 ms after a record was acknowledged where a consumer of the 4
transitions partitions alone is answered in 0.6-1.2 ms; each record also went through a Faust
stream, its event and acknowledgement (docs/performance-history.md, "The 3-node chain, per hop").

What stays Faust's: the group. It still assigns the transitions partitions, so each stays with
the partitions of the executions and timers tables its steps write, and recovers those tables
first; but Faust never fetches them (they are kept out of its active partitions and paused in
aiokafka). Once the tables are recovered (`on_rebalance_complete`), this reader is assigned the
transitions partitions Faust holds, without a group of its own, from the group's committed
offsets, and hands records to the orchestrator one step at a time, across partitions in order
of arrival, as Faust's agent at concurrency 1 did. A table write goes to the changelog partition
of the record being handled, as Faust's own writes inside an agent do.

The records of one execution in a fetched batch are handed over together, in their order (a
fan-out's results, under load): the orchestrator stores them in one write. Executions are
independent, so the order between them within a partition is free; each one's is kept.

At least once: an offset is committed through the app's group only after Faust's producer
is flushed, so everything the steps before it sent (rows, outbox records) is acknowledged;
Faust commits its own offsets the same way. Before Faust's revocation (every rebalance) and
before its consumer stops, the reader stops fetching, lets the step in hand finish, flushes
and commits; a worker killed at any moment leaves what was not committed to be read again.

Handed over (`acknowledged`): a transition this worker sent to a partition it reads, once the
broker has acknowledged it at offset O, is handled from the bytes sent when O is the next offset
of that partition to handle, instead of waiting for a fetch to bring it back (a fetch of the
embedded broker answers about 3 ms after the acknowledgement). It is then exactly the record
the fetch would have brought, handled in the same place in its partition's order and committed
the same way; the fetch's copy is skipped. A record not next when its step can run (records
before it not handled yet) is left to the fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import SimpleNamespace
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.transport import consumer as faust_consumer

from braidflow.config import Settings
from braidflow.metrics import TRANSITIONS_HANDED_OVER
from braidflow.streams.event_scope import acting_for
from braidflow.streams.orchestrator import Record

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 1.0
"""How often handled offsets are committed; also before a revocation and at stop."""

_RETRY_S = 1.0

_READERS: dict[int, TransitionsReader] = {}
"""The reader of each app (by id), which Faust's consumer tells before it lets go."""


class _Handled:
    """What Faust's tables read of the event in hand (`event_scope`): the topic and partition
    of the record a step handles, so its table writes go to that changelog partition."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int, timestamp: float) -> None:
        self.message = SimpleNamespace(topic=topic, partition=partition, timestamp=timestamp)


class TransitionsReader:
    """Feeds the transitions partitions Faust's group gives this worker to `handle`."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        handle: Callable[[Sequence[Record]], Awaitable[None]],
        ready: Callable[[], Awaitable[Any]],
    ) -> None:
        self._app = app
        self._settings = settings
        self._topic = settings.topics.transitions
        self._handle = handle
        self._ready = ready
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._fetching = False
        # Next offset of each partition whose records are handled but not committed.
        self._done: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        # False from a revocation until Faust's next assignment.
        self._current = True
        self._retrying: asyncio.Task[None] | None = None
        # Set at the worker's stop: no assignment reads again.
        self._closed = False
        # One step at a time, fetched or handed over; the next offset to handle of each
        # partition read (a fetched record below it was handed over already).
        self._step = asyncio.Lock()
        self._next: dict[TopicPartition, int] = {}
        # True once the steps may run (`ready`), until the reading stops.
        self._open = False
        self._handing: set[asyncio.Task[None]] = set()
        # Acknowledged records not handled yet, by partition and offset (`acknowledged`).
        self._acknowledged: dict[TopicPartition, dict[int, Any]] = {}
        _READERS[id(app)] = self

    def _group_client(self) -> Any:
        """Faust's aiokafka consumer: the member of the app's group, on this loop."""
        thread = getattr(self._app.consumer, "_thread", None)
        return getattr(thread, "_consumer", None)

    @property
    def reading(self) -> frozenset[TopicPartition]:
        """The transitions partitions this reader reads now."""
        return frozenset() if self._consumer is None else frozenset(self._consumer.assignment())

    def assigned(self) -> None:
        """Faust's group gave this worker an assignment: its recovery's end may be read from."""
        self._current = True

    async def assign(self) -> None:
        """Read the transitions partitions Faust holds now (its tables recovered)."""
        async with self._lock:
            group = self._group_client()
            if group is None or not self._current or self._closed:
                # A revocation came after that recovery: the next assignment's end reads.
                return
            held = sorted(
                (tp for tp in group.assignment() if tp.topic == self._topic),
                key=lambda tp: tp.partition,
            )
            if self._consumer is not None and set(held) == self._consumer.assignment():
                return
            await self._release()
            if not held:
                return
            try:
                consumer = await self._started(group, held)
            except KafkaError as exc:
                # Never left unread: tried again until it starts or the partitions go.
                log.warning("reading the transitions failed to start (trying again): %s", exc)
                self._retrying = asyncio.create_task(self._assign_later())
                return
            self._consumer = consumer
            self._stopping = False
            self._task = asyncio.create_task(self._run(consumer))

    async def _assign_later(self) -> None:
        await asyncio.sleep(_RETRY_S)
        self._retrying = None
        await self.assign()

    async def _started(self, group: Any, held: list[TopicPartition]) -> AIOKafkaConsumer:
        """A consumer of `held`, each partition at the group's committed offset."""
        consumer = AIOKafkaConsumer(
            **self._settings.kafka.aiokafka(f"{self._settings.prefix}-transitions"),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            consumer.assign(held)
            for tp in held:
                offset = await group.committed(tp)
                if offset is None:
                    # Nothing committed yet: from the start, as Faust's `earliest`.
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, offset)
            self._next = {tp: await consumer.position(tp) for tp in held}
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def release(self, *, revoking: bool = False) -> None:
        """Stop reading: the step in hand finishes, what was sent is flushed, offsets committed.
        `revoking`: Faust's group is taking the partitions back (a rebalance)."""
        async with self._lock:
            if revoking:
                self._current = False
            retrying, self._retrying = self._retrying, None
            if retrying is not None and retrying is not asyncio.current_task():
                retrying.cancel()
            await self._release()

    async def stop(self) -> None:
        """Stop reading for good, before the worker's services stop: a step applied after
        them would go without its spans, its executor or its read models."""
        self._closed = True
        await self.release()

    async def _release(self) -> None:
        consumer, task = self._consumer, self._task
        if consumer is None or task is None:
            return
        self._stopping = True
        self._open = False
        if self._fetching:
            # Waiting for a fetch, not in a step: nothing to finish.
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with self._step:
            # A step handed over finishes first; those waiting see the stop.
            pass
        await self._commit()
        self._done.clear()
        self._next = {}
        self._acknowledged.clear()
        self._consumer, self._task = None, None
        await consumer.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        committed_at = time.monotonic()
        # Until then a step could not name its workflow; cancellable, as a fetch is.
        self._fetching = True
        await self._ready()
        self._open = True
        while not self._stopping:
            self._fetching = True
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:
                log.warning("fetching transitions failed (fetching again): %s", exc)
                await asyncio.sleep(_RETRY_S)
                continue
            finally:
                self._fetching = False
            for records in batches.values():
                async with self._step:
                    if self._stopping or not await self._fetched(consumer, records):
                        # The rest is read again by whoever holds the partition next.
                        return
                    await self._hand_over(consumer)
            if self._done and time.monotonic() - committed_at >= COMMIT_INTERVAL_S:
                await self._commit()
                committed_at = time.monotonic()

    async def _fetched(self, consumer: AIOKafkaConsumer, records: list[Any]) -> bool:
        """Handle a partition's fetched records, each execution's together, in the order of
        its first; False when the reading stops in between (the step held).

        The handled offset moves only over records all handled: records of another execution
        may have been handled past it, and are read again (and ignored) after a stop or a
        failed step, at least once as any record.
        """
        tp = TopicPartition(records[0].topic, records[0].partition)
        # Below the next offset: handed over when it was acknowledged.
        fresh = [record for record in records if record.offset >= self._next.get(tp, 0)]
        handled: set[int] = set()
        unhandled = 0
        for group in _by_execution(fresh):
            if self._stopping:
                return False
            if not await self._one(consumer, group, fresh[unhandled].offset):
                break
            handled.update(record.offset for record in group)
            while unhandled < len(fresh) and fresh[unhandled].offset in handled:
                unhandled += 1
            self._done[tp] = self._next[tp] = (
                fresh[unhandled].offset if unhandled < len(fresh) else fresh[-1].offset + 1
            )
        return True

    async def _one(self, consumer: AIOKafkaConsumer, records: list[Any], resume_at: int) -> bool:
        """Handle `records` (one execution's, in order); False when that failed, and the
        partition is to be read again from `resume_at` (after a pause)."""
        last = records[-1]
        handled = _Handled(last.topic, last.partition, last.timestamp / 1000)
        try:
            with acting_for(handled):  # type: ignore[arg-type]
                await self._handle(
                    [Record(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
                )
        except Exception:
            # Not a poison record (those go to the dead letters): the broker or a store
            # failing. Never skipped: read again from this record.
            log.exception("handling a transition failed; reading it again")
            consumer.seek(TopicPartition(last.topic, last.partition), resume_at)
            await asyncio.sleep(_RETRY_S)
            return False
        return True

    def acknowledged(
        self, partition: int, offset: int, key: bytes | None, value: bytes | None, at_ms: int
    ) -> None:
        """This worker's record of the transitions topic was acknowledged at `offset`: handle
        it as soon as it is next in a partition this reader reads (else the fetch brings it)."""
        tp = TopicPartition(self._topic, partition)
        next_offset = self._next.get(tp)
        # Next, or next once the step in hand ends (its result came back before it ended).
        if not self._open or next_offset is None or not next_offset <= offset <= next_offset + 1:
            return
        self._acknowledged.setdefault(tp, {})[offset] = SimpleNamespace(
            topic=self._topic, partition=partition, offset=offset, key=key, value=value,
            timestamp=at_ms,
        )  # fmt: skip
        if not self._step.locked():
            # Else whoever holds the step hands it over once done (`_hand_over`).
            task = asyncio.ensure_future(self._take_acknowledged())
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)

    async def _take_acknowledged(self) -> None:
        async with self._step:
            consumer = self._consumer
            if consumer is not None and not self._stopping:
                await self._hand_over(consumer)

    async def _hand_over(self, consumer: AIOKafkaConsumer) -> None:
        """Handle the acknowledged records that are next in their partitions (the step held)."""
        while self._acknowledged and self._open:
            record = None
            for tp, held in list(self._acknowledged.items()):
                next_offset = self._next.get(tp, 0)
                for offset in [o for o in held if o < next_offset]:
                    # Handled from a fetch meanwhile.
                    del held[offset]
                record = held.pop(next_offset, None)
                if not held:
                    del self._acknowledged[tp]
                if record is not None:
                    break
            if record is None:
                return
            TRANSITIONS_HANDED_OVER.inc()
            tp = TopicPartition(record.topic, record.partition)
            if not await self._one(consumer, [record], record.offset):
                return
            self._done[tp] = self._next[tp] = record.offset + 1

    async def _commit(self) -> None:
        """Flush Faust's producer, then commit the handled offsets through the app's group."""
        if not self._done:
            return
        offsets = dict(self._done)
        group = self._group_client()
        if group is None:
            return
        try:
            await self._app.producer.flush()
            await group.commit(offsets)
        except (KafkaError, RuntimeError) as exc:
            # Read again later (at least once); tried again at the next round.
            log.warning("committing the transitions offsets failed: %s", exc)
            return
        for tp, offset in offsets.items():
            if self._done.get(tp) == offset:
                del self._done[tp]


def _by_execution(records: list[Any]) -> list[list[Any]]:
    """`records` by key (an execution's), each in order, in the order of each key's first;
    a record without a key (poison) alone."""
    groups: dict[bytes | int, list[Any]] = {}
    for record in records:
        groups.setdefault(record.offset if record.key is None else record.key, []).append(record)
    return list(groups.values())


def _kept_apart(consumer: Any, tps: Iterable[Any]) -> set[Any]:
    """`tps` but the partitions of a topic a `TransitionsReader` reads instead of Faust."""
    reader = _READERS.get(id(consumer.app))
    return {tp for tp in tps if reader is None or tp.topic != reader._topic}


def apart_topics(app: Any) -> frozenset[str]:
    """The topics of `app` Faust's consumer is assigned but never fetches."""
    reader = _READERS.get(id(app))
    return frozenset() if reader is None else frozenset({reader._topic})


def patch_transitions_apart() -> None:
    """Keep Faust from reading the transitions topic, and let its reader go first (idempotent)."""
    consumer_class = faust_consumer.Consumer
    if getattr(consumer_class, "_braidflow_transitions_apart", False):
        return
    set_active, resume = consumer_class._set_active_tps, consumer_class.resume_partitions
    revoked, stop = consumer_class.on_partitions_revoked, consumer_class.on_stop
    assigned = consumer_class.on_partitions_assigned

    def _set_active_tps(self: Any, tps: set[Any]) -> set[Any]:
        return set_active(self, _kept_apart(self, tps))

    def resume_partitions(self: Any, tps: Iterable[Any]) -> None:
        resume(self, _kept_apart(self, tps))

    async def on_partitions_revoked(self: Any, tps: set[Any]) -> None:
        reader = _READERS.get(id(self.app))
        if reader is not None:
            await reader.release(revoking=True)
        await revoked(self, tps)

    async def on_partitions_assigned(self: Any, tps: set[Any], generation_id: int = 0) -> None:
        reader = _READERS.get(id(self.app))
        if reader is not None:
            reader.assigned()
        await assigned(self, tps, generation_id)

    async def on_stop(self: Any) -> None:
        reader = _READERS.get(id(self.app))
        if reader is not None:
            await reader.release()
        await stop(self)

    consumer_class._set_active_tps = _set_active_tps
    consumer_class.resume_partitions = resume_partitions
    consumer_class.on_partitions_revoked = on_partitions_revoked
    consumer_class.on_partitions_assigned = on_partitions_assigned
    consumer_class.on_stop = on_stop
    consumer_class._braidflow_transitions_apart = True
