"""Faust's aiokafka consumer runs on the worker's event loop, not on a thread of its own.

faust-streaming 0.15 runs its aiokafka consumer in a `ServiceThread` with an event loop of
its own and asks it for every batch across loops (`call_thread`: a method queue, a future,
`call_soon_threadsafe`). Each hop of a record paid 0.5-1.05 ms there, and the main thread
spent about 15% of its samples in `call_soon_threadsafe` waiting for the GIL the woken
consumer thread held (docs/performance-history.md, "The 3-node chain, per hop"). faust-streaming has
no setting to run the consumer without its thread.

Here the same consumer class runs on the app's loop: its "thread loop" is that loop, calls to
it are plain awaits, and rebalance callbacks call Faust's directly. Everything else (the
group, the assignment, fetching, commits, seeks, Faust's recovery and flow control) is
faust-streaming's own code, unchanged, so its guarantees are the same ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.utils.futures import maybe_async


class LoopConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer "thread", run as a service of the app's own event loop."""

    def __init__(
        self, consumer: Any, *, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any
    ) -> None:
        loop = loop or asyncio.get_event_loop()
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)

    async def start(self) -> None:
        """Start the consumer on this loop (no thread is made)."""
        self._thread_started.set()
        await self._default_start()

    async def stop(self) -> None:
        """Stop the consumer, then its children, on this loop (what the thread did at its end)."""
        if self._started.is_set() and not self._stopped.is_set():
            self._stopped.set()
            await self.on_stop()
            await self._shutdown_thread()
            await self.on_shutdown()

    async def call_thread(
        self, fun: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        """Run `fun` here: the consumer lives on this loop."""
        return await maybe_async(fun(*args, **kwargs))

    async def cast_thread(
        self, fun: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> None:
        """Run `fun` here, as `call_thread`."""
        await maybe_async(fun(*args, **kwargs))

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        """Faust's revocation, called from aiokafka's rebalance on the same loop."""
        await self.consumer.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        """Faust's assignment, called from aiokafka's rebalance on the same loop."""
        await self.consumer.on_partitions_assigned(assigned, generation_id)

    def verify_event_path(self, now: float, tp: Any) -> None:
        """Faust's livelock check, passing over a partition whose position aiokafka is
        resetting (after a fetch that timed out, say): Faust reads that position unguarded,
        and aiokafka's assertion in it crashed a worker firing 30,000 timers under load."""
        subscription = self._ensure_consumer()._subscription.subscription
        if subscription is None:
            return None
        state = subscription.assignment.state_value(TopicPartition(tp.topic, tp.partition))
        if state is None or not state.has_valid_position:
            return None
        super().verify_event_path(now, tp)


def patch_loop_consumer() -> None:
    """Make Faust's aiokafka consumer run on the app's loop (idempotent)."""
    consumer_class = faust_aiokafka.Consumer
    if getattr(consumer_class, "_braidflow_loop_consumer", False):
        return

    def new_consumer_thread(self: Any) -> LoopConsumerThread:
        return LoopConsumerThread(self, loop=self.loop, beacon=self.beacon)

    consumer_class._new_consumer_thread = new_consumer_thread
    consumer_class._braidflow_loop_consumer = True
