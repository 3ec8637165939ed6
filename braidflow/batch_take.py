"""A batch read of a librdkafka consumer that waits in a thread, and the stop that waits for it.

A reader on the event loop takes on the spot what librdkafka has fetched; only when there is
nothing does it wait, in a thread. `consume(n, timeout)` waits the whole timeout for n
records, which put 100 ms on every event at low load; a take waits only while there is
nothing at all. The wait is shielded from the reader's cancellation, and a consumer must not
be closed while a thread is still in it: `BatchTake.stop` cancels the reader, then waits for
the take before the consumer is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor
from typing import Any

import confluent_kafka


def take(consumer: confluent_kafka.Consumer, wait_s: float, most: int) -> list[Any]:
    """Wait up to `wait_s` for one record, then take what else is ready, `most` in all."""
    first = consumer.consume(1, wait_s)
    if not first:
        return first
    return first + consumer.consume(most - 1, 0)


class BatchTake:
    """The reader's takes that wait in a thread, at most `most` records each: one of the
    event loop's default threads, or one of `threads`."""

    def __init__(self, most: int, threads: Executor | None = None) -> None:
        self._most = most
        self._threads = threads
        self._taking: asyncio.Future[list[Any]] | None = None

    async def wait(self, consumer: confluent_kafka.Consumer, wait_s: float) -> list[Any]:
        """`take` in a thread; shielded, so that `stop` can wait for it before closing."""
        loop = asyncio.get_running_loop()
        self._taking = loop.run_in_executor(self._threads, take, consumer, wait_s, self._most)
        return await asyncio.shield(self._taking)

    async def stop(self, reader: asyncio.Task[None] | None) -> None:
        """Cancel `reader` (the loop taking), then wait for its take still in a thread: after
        this the consumer may be closed."""
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if self._taking is not None:
            with contextlib.suppress(Exception):
                await self._taking
            self._taking = None
