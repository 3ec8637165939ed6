"""The executor's results leave through a producer of their own, not through Faust's.

aiokafka keeps one produce request in flight per broker. Through Faust's producer, a result
of a task handed over in this worker (`Executor.run_here`) waited behind the request
carrying the very step that asked for it (its state row, lifecycle events and task
record): a whole produce round trip on every task of a chain (docs/performance-history.md,
"The 3-node chain: where its time goes"). The executor needs no flush from Faust: a result
counts as delivered only once its own send is acknowledged. While nothing else of this
producer is on its way, a result goes in a request of its own, written at once
(`lone_request`): a chain's results, one at a time.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from braidflow.config import Settings
from braidflow.engine import Transition
from braidflow.engine.trace_context import HEADER as TRACEPARENT
from braidflow.schemas import encode_transition
from braidflow.streams.lone_request import LoneRequests, Sent
from braidflow.streams.partitioner import KeyPartitioner

Acknowledged = Callable[[int, int, bytes | None, bytes | None, int], None]
"""Told (partition, offset, key, value, timestamp ms) of a transition the broker acknowledged."""


class ResultProducer:
    """Sends task results to the transitions topic, each waiting for its acknowledgement."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = settings.topics.transitions
        self._producer: AIOKafkaProducer | None = None
        self._alone: LoneRequests | None = None
        # The transitions reader, which may handle the result at once (`transitions_reader`).
        self.on_acknowledged: Acknowledged | None = None

    async def start(self) -> None:
        """Connect; made here, since aiokafka wants the running event loop."""
        settings = self._settings
        self._producer = AIOKafkaProducer(
            **settings.kafka.aiokafka(f"{settings.prefix}-results"),
            acks="all",
            linger_ms=0,
            # Where Faust's producer puts the execution's other transitions.
            partitioner=KeyPartitioner(),
            max_request_size=settings.max_record_bytes,
        )
        await self._producer.start()
        self._alone = LoneRequests(self._producer)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = self._alone = None

    async def send(
        self, transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        """Send a result keyed by its execution; return once the broker has it. `value`: its
        encoding, when the caller made it already (the executor, for its size check)."""
        headers = None if traceparent is None else [(TRACEPARENT, traceparent.encode())]
        key = transition.execution_id.encode()
        value = value if value is not None else encode_transition(transition)
        sent = await self._produce(key, value, headers)
        if self.on_acknowledged is not None:
            self.on_acknowledged(sent.partition, sent.offset, key, value, sent.timestamp)

    async def _produce(
        self, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> Sent:
        """Send one record and wait for its acknowledgement: alone when nothing else is on
        its way, else with the others through aiokafka's sender."""
        producer, alone = self._producer, self._alone
        if producer is None or alone is None:
            raise RuntimeError("the result producer is not started")
        sent = await alone.send(self._topic, key, value, headers)
        if sent is not None:
            return sent
        meta = await producer.send_and_wait(self._topic, value, key=key, headers=headers)
        return Sent(meta.partition, meta.offset, meta.timestamp)
