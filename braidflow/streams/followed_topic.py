"""A one-partition topic every worker reads whole into memory, then follows: the workflow
catalog and the API keys. A write through it returns once this worker has read the record
back, so an answer given after a write holds on the worker that gave it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from braidflow.config import Settings

READ_BACK_TIMEOUT_S = 10.0

Produce = Callable[[str, bytes, bytes], Awaitable[int]]
"""Send (topic, key, value) and return the offset once the broker has it."""

Apply = Callable[[bytes | None, int | None], Awaitable[None]]
"""Take in one record's (value, timestamp), in topic order."""

Found = TypeVar("Found")


class FollowedTopic:
    """Partition 0 of `topic`, each record handed to `apply` in order; `ready` once the
    records there at start are read.

    "There at start" is measured by the high watermark of the follower's first fetch
    answer, not by ListOffsets: Tansu 0.6 answers ListOffsets(latest) with the base
    offset of the last batch plus one (streams/changelog_ends.py), short of that batch's
    other records, while a fetch reports the partition's true end on every broker.
    """

    def __init__(self, settings: Settings, topic: str, produce: Produce, apply: Apply) -> None:
        self._settings = settings
        self._topic = topic
        self._produce = produce
        self._apply = apply
        self._position = 0
        self._changed = asyncio.Condition()
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._follow: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the topic up to its current end, then keep following it."""
        consumer = AIOKafkaConsumer(
            **self._settings.kafka.aiokafka(),
            enable_auto_commit=False,
            fetch_max_wait_ms=self._settings.background_fetch_wait_ms,
        )
        await consumer.start()
        self._consumer = consumer
        partition = TopicPartition(self._topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        # Zero only when the partition is empty, on Tansu too (a batch makes it at least 1):
        # ready at once, rather than after a fetch wait.
        if (await consumer.end_offsets([partition]))[partition] == 0:
            self.ready.set()
        self._follow = asyncio.create_task(self._read(consumer, partition))

    async def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        for consumer in (self._consumer, self._offsets):
            if consumer is not None:
                await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer, partition: TopicPartition) -> None:
        # The end to reach before `ready`: the high watermark of the first fetch answered
        # (None until then), which holds every record stored before the follower started.
        initial_end: int | None = None
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    await self._apply(record.value, record.timestamp)
                    self._position = record.offset + 1
            if initial_end is None:
                initial_end = consumer.highwater(partition)
            if initial_end is not None and self._position >= initial_end:
                self.ready.set()
            async with self._changed:
                self._changed.notify_all()

    async def write(self, key: bytes, value: bytes) -> int:
        """Store a record and wait until this worker has read it back; its offset."""
        offset = await self._produce(self._topic, key, value)
        await self.read_to(offset + 1)
        return offset

    async def read_to(self, end: int) -> None:
        """Wait until everything before offset `end` is read (TimeoutError after READ_BACK_TIMEOUT_S)."""
        async with asyncio.timeout(READ_BACK_TIMEOUT_S), self._changed:
            while self._position < end:
                await self._changed.wait()

    async def until(self, found: Callable[[], Found | None], timeout_s: float) -> Found | None:
        """What `found` gives once it gives something, checked after each batch read;
        None after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        async with self._changed:
            while (value := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return value

    async def catch_up(self) -> None:
        """Wait until every record stored before this call is read.

        The follower fetches in the background, up to `background_fetch_wait_ms` behind;
        this is what lets an event published after a deploy's answer see that
        deployment, on every worker. One offset request when nothing is new.
        """
        if self._offsets is None:
            # A client of its own: a broker answers a connection's requests in order, so
            # asking on the follower's would wait out the fetch it has pending.
            self._offsets = AIOKafkaConsumer(**self._settings.kafka.aiokafka())
            await self._offsets.start()
        partition = TopicPartition(self._topic, 0)
        end = (await self._offsets.end_offsets([partition]))[partition]
        if self._position < end:
            await self.read_to(end)
