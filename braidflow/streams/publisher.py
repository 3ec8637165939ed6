"""Sending records from a worker: all through Faust's producer, but the executor's results.

One producer on purpose: Faust flushes it before committing consumed offsets,
so whatever a worker sent for a record is out before that record counts as done.
The executor's results need no such flush (each is awaited before its task counts as
done) and go through their own (`streams/result_producer.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError

from braidflow.config import Topics
from braidflow.engine import TimerFired, Transition, ids
from braidflow.engine.ids import DueTimer
from braidflow.engine.trace_context import HEADER as TRACEPARENT
from braidflow.metrics import DEAD_LETTERS
from braidflow.schemas import encode_transition
from braidflow.schemas.dead_letters import HEAD_BYTES, DeadLetter, RedriveMark
from braidflow.schemas.node_logs import NodeRunLog
from braidflow.streams.quick_send import Acknowledgement, OpenBatches, open_batches
from braidflow.streams.result_producer import Acknowledged

log = logging.getLogger(__name__)


def _unheeded(argument: Any, partition: int, offset: int, at: int) -> None:
    """The acknowledgement of a record whose sender waits for none."""


def _log_failed_fire(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("firing a timer failed (it fires again): %s", future.exception())


def epoch_ms() -> int:
    """Now, in epoch milliseconds: the one place the runtime reads the wall clock."""
    return time.time_ns() // 1_000_000


class Publisher:
    """Sends to braidflow's topics through the app's producer."""

    def __init__(self, app: faust.App, topics: Topics) -> None:
        self._app = app
        self._topics = topics
        self._transitions = topics.transitions
        # Told of each transition sent once acknowledged (`transitions_reader`).
        self.on_transition: Acknowledged | None = None

    async def queue(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
        *,
        timestamp_ms: int | None = None,
    ) -> Awaitable[Any]:
        """Queue a send (stamped `timestamp_ms`, default now); the returned future resolves
        on acknowledgement."""
        timestamp = None if timestamp_ms is None else timestamp_ms / 1000
        future = await self._app.producer.send(topic, key, value, None, timestamp, headers)
        if self.on_transition is not None and topic == self._transitions:
            future.add_done_callback(self._acknowledged(key, value))  # type: ignore[attr-defined]
        return future

    def queue_now(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]] | None,
        acknowledged: Acknowledgement,
        argument: Any,
    ) -> bool:
        """Append a record to its partition's open batch, with no future of its own:
        `acknowledged(argument, partition, offset, timestamp_ms)` once it is acknowledged.

        False when it must be `queue`d (no producer or metadata yet, a full batch, a
        transaction, a record over the limit: `queue` raises what it raised).
        """
        queued = self.sends_now()
        return queued is not None and queued(topic, key, value, headers, acknowledged, argument)

    def sends_now(self) -> SendingNow | None:
        """`queue_now` for a run of keyed records with nothing awaited between them (a step's
        records), each looked up and checked once (`quick_send.OpenBatches`); None when each
        must be `queue`d. Take another after an `await`."""
        faust_producer = self._app.producer
        producer = getattr(faust_producer, "_producer", None)
        if producer is None or not faust_producer.allow_headers:  # type: ignore[attr-defined]
            return None
        batches = open_batches(producer)
        return None if batches is None else SendingNow(self, batches)

    def _transition_acknowledged(
        self, told: tuple[Acknowledgement, Any, bytes, bytes], partition: int, offset: int, at: int
    ) -> None:
        acknowledged, argument, key, value = told
        acknowledged(argument, partition, offset, at)
        if self.on_transition is not None:
            self.on_transition(partition, offset, key, value, at)

    def _acknowledged(self, key: bytes, value: bytes) -> Callable[[Any], None]:
        def done(future: Any) -> None:
            told = self.on_transition
            if told is not None and not future.cancelled() and future.exception() is None:
                sent = future.result()
                told(sent.partition, sent.offset, key, value, sent.timestamp)

        return done

    async def produce(self, topic: str, key: bytes, value: bytes) -> int:
        """Send and wait for the broker's acknowledgement; the record's offset."""
        metadata = await (await self.queue(topic, key, value))
        return int(metadata.offset)

    async def send_transition(self, transition: Transition, traceparent: str | None = None) -> None:
        """Send a transition and wait for its acknowledgement; `traceparent` goes in the header
        of that name."""
        headers = None if traceparent is None else [(TRACEPARENT, traceparent.encode())]
        key = transition.execution_id.encode()
        value = encode_transition(transition)
        await (await self.queue(self._topics.transitions, key, value, headers))

    async def fire_timer(self, timer: DueTimer, traceparent: str | None) -> None:
        """Queue the TimerFired of a due timer, `traceparent` (the execution's, kept in the
        timer's row) in its header. Nothing waits for its acknowledgement: waiting fired one
        timer per broker round trip.

        `at` is the due time: the same transition on every resend, and the orchestrator names
        the row from it. Appended with no future of its own when it can be (`queue_now`), as
        the outbox's records are: a future and a callback for every one of 100,000 timers due
        at once is work that no one reads. A send that fails is logged (by its batch), and the
        scanner fires the timer again while its row stays.
        """
        fired = TimerFired(
            ids.timer_fired_id(timer.execution_id, timer.timer_id, timer.due_ms),
            timer.execution_id,
            timer.due_ms,
            timer.timer_id,
        )
        topic, key = self._topics.transitions, timer.execution_id.encode()
        value = encode_transition(fired)
        headers = None if traceparent is None else [(TRACEPARENT, traceparent.encode())]
        if self.queue_now(topic, key, value, headers, _unheeded, None):
            return
        acknowledged = await self.queue(topic, key, value, headers)
        acknowledged.add_done_callback(_log_failed_fire)  # type: ignore[attr-defined]

    async def send_node_log(self, run_log: NodeRunLog, traceparent: str | None = None) -> None:
        """What a node run's handler logged, keyed by its execution; `traceparent` goes in
        the header of that name."""
        headers = None if traceparent is None else [(TRACEPARENT, traceparent.encode())]
        key = run_log.execution_id.encode()
        await (await self.queue(self._topics.logs, key, run_log.encode(), headers))

    async def dead_letter(self, letter: DeadLetter) -> None:
        DEAD_LETTERS.labels("record", letter.topic).inc()
        log.warning(
            "dead letter from %s[%d]@%d: %s",
            letter.topic,
            letter.partition,
            letter.offset,
            letter.reason,
        )
        # The key too is kept to its head: the record may be dead for being too large.
        key = (letter.key or b"")[:HEAD_BYTES]
        await self.produce(self._topics.dead_letters, key, letter.encode())

    async def mark_redriven(self, mark: RedriveMark) -> None:
        """Tell every worker's dead-letter index that a dead letter was sent again."""
        await self.produce(self._topics.dead_letters, mark.dead_letter_id.encode(), mark.encode())


class SendingNow:
    """`Publisher.queue_now` into open batches taken once (`Publisher.sends_now`)."""

    __slots__ = ("_batches", "_publisher")

    def __init__(self, publisher: Publisher, batches: OpenBatches) -> None:
        self._publisher = publisher
        self._batches = batches

    def __call__(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]] | None,
        acknowledged: Acknowledgement,
        argument: Any,
    ) -> bool:
        publisher = self._publisher
        if publisher.on_transition is not None and topic == publisher._transitions:
            argument = (acknowledged, argument, key, value)
            acknowledged = publisher._transition_acknowledged
        try:
            return self._batches.append(topic, key, value, headers, acknowledged, argument)
        except KafkaError:
            return False
