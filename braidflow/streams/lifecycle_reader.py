"""The lifecycle topic read in batches by a plain consumer group (librdkafka), for the stats.

Faust's agents pay for every record: an event object, the stream's machinery, an
acknowledgement, a hop from Faust's consumer thread. The stats' first stage needs none of it:
it reads whatever librdkafka has fetched, a batch at a time on the event loop's thread
(waiting in a thread only while there is nothing), hands the batch to `observe`, which
returns once what the batch made is acknowledged by the broker, and only then counts the
batch's offsets as done. Done offsets are committed at most once a second, when partitions
are revoked, and at stop: a worker killed in between leaves its last batches to be read
again (at least once). A batch that takes long is observed while the paused consumer is
polled, to stay in the group; a partition revoked meanwhile gets no offsets of that batch
marked done (its new owner reads them again; the buckets' positions count them once).

A group that has committed nothing yet starts where the stats' former reader, Faust's
`stats-runs` agent of the app's group (the prefix), had got to, so a worker upgraded in
place neither counts the topic again nor skips what came in meanwhile; a new cluster starts
from the earliest record, as that agent did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import confluent_kafka

from braidflow.batch_take import BatchTake
from braidflow.config import Settings
from braidflow.fetch_stall import StallWatch, longer_wait, stalled
from braidflow.streams.group_errors import FATAL_GROUP_ERRORS

log = logging.getLogger(__name__)

Observe = Callable[[Sequence[Any]], Awaitable[None]]
"""Takes a batch of confluent-kafka messages; returns once what it sent is acknowledged."""

_BATCH_MAX = 1000
# Time a batch gathers over: the first stage sends a record per stats key and batch.
_BATCH_WITHIN_S = 0.1
# How long a read waits in a thread while nothing comes: one loop round trip per wait.
_IDLE_WAIT_S = 1.0
_COMMIT_INTERVAL_S = 1.0
_RETRY_S = 1.0
# How often a batch still being observed polls the paused consumer, well inside the 10 s.
_KEEPALIVE_S = 2.0
_INVALID = confluent_kafka.OFFSET_INVALID


class LifecycleReader:
    """Follows the lifecycle topic in the group `<prefix>-stats`, through `observe`."""

    def __init__(self, settings: Settings, observe: Observe) -> None:
        self._settings = settings
        self._observe = observe
        self._topic = settings.topics.lifecycle
        self._group = f"{settings.prefix}-stats"
        # Next offset of each partition whose batches are observed but not yet committed.
        self._done: dict[int, int] = {}
        self._consumer: confluent_kafka.Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._takes = BatchTake(_BATCH_MAX)
        # Told when the broker refuses the group for good (group id, error code).
        self.on_refusal: Callable[[str, int], None] = lambda group, code: None
        # Longer after a stall on the embedded broker (`fetch_stall`).
        self._fetch_wait_ms = settings.background_fetch_wait_ms
        self._stall = StallWatch()

    def _config(self, group: str) -> dict[str, Any]:
        return self._settings.confluent_group(group, self._fetch_wait_ms)

    def _subscribed(self) -> confluent_kafka.Consumer:
        consumer = confluent_kafka.Consumer(self._config(self._group))
        consumer.subscribe(
            [self._topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )
        self._consumer = consumer
        return consumer

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(self._subscribed()))

    async def stop(self) -> None:
        await self._takes.stop(self._task)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await asyncio.to_thread(self._commit, consumer, None)
            await asyncio.to_thread(consumer.close)

    async def _run(self, consumer: confluent_kafka.Consumer) -> None:
        committed_at = time.monotonic()
        carried: list[Any] = []
        while True:
            try:
                messages = (
                    carried
                    or consumer.consume(_BATCH_MAX, 0)
                    or await self._takes.wait(consumer, _IDLE_WAIT_S)
                )
                carried = []
                if stalled(self._stall, consumer, time.monotonic(), bool(messages)):
                    consumer = await self._with_longer_wait(consumer)
                    continue
                read = [m for m in messages if m.error() is None]
                for failed in (m for m in messages if m.error() is not None):
                    self._failed(failed.error())
                if read:
                    carried = await self._in_group(consumer, self._observe(read))
                    # A partition revoked while the batch was observed is another's now.
                    held = {tp.partition for tp in consumer.assignment()}
                    for message in read:
                        if message.partition() in held:
                            self._done[message.partition()] = message.offset() + 1
                if self._done and time.monotonic() - committed_at >= _COMMIT_INTERVAL_S:
                    await asyncio.to_thread(self._commit, consumer, None)
                    committed_at = time.monotonic()
                if read and len(messages) < _BATCH_MAX:
                    await asyncio.sleep(_BATCH_WITHIN_S)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stats: reading the lifecycle topic failed; reading it again")
                await asyncio.sleep(_RETRY_S)
                self._rewind(consumer)

    async def _in_group(
        self, consumer: confluent_kafka.Consumer, observing: Awaitable[None]
    ) -> list[Any]:
        """Await `observing`, polling the consumer meanwhile with its partitions paused;
        what those polls bring (a partition assigned meanwhile) is carried to the next batch.

        librdkafka leaves the group when it is not polled for `max.poll.interval.ms` (10 s,
        kept short because it is also the group's rebalance timeout), and a batch may take
        longer: an event naming a workflow version this worker has not read yet waits for
        it up to 30 s. Left, the reader read the same batch again and again and counted
        nothing more (seen in CI on a worker that ran the whole suite).
        """
        work = asyncio.ensure_future(observing)
        carried: list[Any] = []
        paused = False
        while not (await asyncio.wait({work}, timeout=_KEEPALIVE_S))[0]:
            consumer.pause(consumer.assignment())
            paused = True
            carried.extend(consumer.consume(_BATCH_MAX, 0))
        if paused:
            consumer.resume(consumer.assignment())
        work.result()
        return carried

    async def _with_longer_wait(
        self, consumer: confluent_kafka.Consumer
    ) -> confluent_kafka.Consumer:
        """The reader's consumer made again with a longer fetch wait, after the done offsets
        are committed: the new one starts from the commits."""
        wait = longer_wait(self._fetch_wait_ms)
        if wait is None:
            return consumer
        log.warning(
            "stats: fetches at %d ms bring no records the broker has; waiting %d ms",
            self._fetch_wait_ms,
            wait,
        )
        self._consumer = None
        await asyncio.to_thread(self._commit, consumer, None)
        await asyncio.to_thread(consumer.close)
        self._fetch_wait_ms = wait
        return self._subscribed()

    def _failed(self, error: confluent_kafka.KafkaError) -> None:
        code = error.code()
        if code in FATAL_GROUP_ERRORS:
            self.on_refusal(self._group, code)
        elif code != confluent_kafka.KafkaError._PARTITION_EOF:
            log.warning("stats: reading the lifecycle topic: %s", error)

    def _rewind(self, consumer: confluent_kafka.Consumer) -> None:
        """Back to the last committed offsets: what a failed batch read is read again."""
        with contextlib.suppress(confluent_kafka.KafkaException):
            assigned = consumer.assignment()
            for partition in consumer.committed(assigned, timeout=10):
                if partition.offset >= 0:
                    consumer.seek(partition)

    def _commit(self, consumer: confluent_kafka.Consumer, partitions: set[int] | None) -> None:
        """Commit the done offsets of `partitions` (None: all); a failure is tried again at
        the next round (a rebalance under way, usually)."""
        offsets = [
            confluent_kafka.TopicPartition(self._topic, p, o)
            for p, o in self._done.items()
            if partitions is None or p in partitions
        ]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            log.warning("stats: committing %s failed: %s", self._group, exc)
            return
        for each in offsets:
            if self._done.get(each.partition) == each.offset:
                del self._done[each.partition]

    # librdkafka's rebalance callbacks run inside a read, on the thread that reads.

    def _assigned(
        self, consumer: confluent_kafka.Consumer, partitions: list[confluent_kafka.TopicPartition]
    ) -> None:
        try:
            committed = consumer.committed(partitions, timeout=10)
        except confluent_kafka.KafkaException as exc:
            # Read from the group's own commits, as librdkafka does when left to itself.
            log.warning("stats: reading %s's offsets failed: %s", self._group, exc)
            consumer.assign(partitions)
            return
        fresh = [p for p in committed if p.offset == _INVALID]
        if fresh:
            inherited = self._former_positions(fresh)
            for partition in committed:
                partition.offset = inherited.get(partition.partition, partition.offset)
        consumer.assign(committed)

    def _former_positions(self, partitions: list[confluent_kafka.TopicPartition]) -> dict[int, int]:
        """Where the `stats-runs` agent of Faust's group had got to, per partition."""
        former = confluent_kafka.Consumer(self._config(self._settings.prefix))
        try:
            asked = [confluent_kafka.TopicPartition(self._topic, p.partition) for p in partitions]
            found = former.committed(asked, timeout=10)
        except confluent_kafka.KafkaException as exc:
            log.warning("stats: reading the former stats reader's offsets failed: %s", exc)
            return {}
        finally:
            former.close()
        return {p.partition: p.offset for p in found if p.offset >= 0}

    def _revoked(
        self, consumer: confluent_kafka.Consumer, partitions: list[confluent_kafka.TopicPartition]
    ) -> None:
        self._commit(consumer, {p.partition for p in partitions})
        self._lost(consumer, partitions)

    def _lost(
        self, consumer: confluent_kafka.Consumer, partitions: list[confluent_kafka.TopicPartition]
    ) -> None:
        for p in partitions:
            self._done.pop(p.partition, None)
