"""A librdkafka producer for the event router's starts, answering with asyncio futures.

The router sends ten or more records per event it routes. Through Faust's
aiokafka producer each cost about 20 µs of the worker's one event-loop thread
before the broker even saw it; librdkafka batches and sends from threads of
its own, so a send is a few µs. The router does not need Faust's flush-before-
commit ordering: it commits its offsets only once its sends are acknowledged.
Keys are partitioned with murmur2 like the Java client, Faust and aiokafka,
so a start reaches the partition that holds its execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import confluent_kafka

from braidflow.kafka_connection import KafkaConnection

# How often delivery reports are collected while sends are in flight.
_REPORT_POLL_S = 0.001
# How long a full local queue is waited out, a little at a time, before a send fails.
_QUEUE_FULL_WAIT_S = 10.0


class DeliveryError(RuntimeError):
    """The broker did not take a record."""


class BulkProducer:
    """Queue (topic, key, value); each send's future resolves to its offset once acknowledged."""

    def __init__(
        self, connection: KafkaConnection, config: Mapping[str, Any] | None = None
    ) -> None:
        self._producer = confluent_kafka.Producer(
            connection.confluent(
                {
                    "partitioner": "murmur2_random",
                    "acks": "all",
                    # A start waits at most this long for others to share its request.
                    "linger.ms": 2,
                    "socket.nagle.disable": True,
                    **(config or {}),
                }
            )
        )
        self._in_flight = asyncio.Event()
        self._reports: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reports = asyncio.create_task(self._collect_reports())

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Wait for what is queued (up to `timeout_s`), then stop; no sends after this."""
        # Not `flush()` in a thread: it would run the delivery callbacks there, and
        # asyncio futures may only be settled on their loop's thread.
        deadline = time.monotonic() + timeout_s
        while len(self._producer) and time.monotonic() < deadline:
            self._producer.poll(0)
            await asyncio.sleep(_REPORT_POLL_S)
        if self._reports is not None:
            self._reports.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reports
        # What is still queued fails its futures (purged), and librdkafka lets go of its
        # connections now rather than reconnecting to a broker that is going away.
        self._producer.purge()
        self._producer.poll(0)
        self._producer.close()

    async def queue(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[int]:
        """Queue a send (with `headers`); the returned future resolves to the record's offset.

        DeliveryError at once for a record no broker could take (too large);
        through the future when the broker refuses it or it times out.
        """
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def delivered(error: confluent_kafka.KafkaError | None, message: Any) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(DeliveryError(f"{topic}: {error.str()}"))
            else:
                future.set_result(message.offset())

        waited = 0.0
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=delivered, headers=headers)
                break
            except confluent_kafka.KafkaException as exc:
                # Refused before sending (too large, unknown topic name): no retry helps.
                raise DeliveryError(f"{topic}: {exc.args[0].str()}") from None
            except BufferError:
                # librdkafka's local queue is full: let reports come back to make room.
                if waited >= _QUEUE_FULL_WAIT_S:
                    raise DeliveryError(
                        f"{topic}: the local send queue stayed full for {_QUEUE_FULL_WAIT_S:g} s"
                    ) from None
                self._producer.poll(0)
                await asyncio.sleep(0.01)
                waited += 0.01
        self._in_flight.set()
        return future

    async def _collect_reports(self) -> None:
        """Serve delivery reports on the event loop's thread, so callbacks may touch futures."""
        while True:
            self._producer.poll(0)
            if len(self._producer) == 0:
                self._in_flight.clear()
                await self._in_flight.wait()
            else:
                await asyncio.sleep(_REPORT_POLL_S)
