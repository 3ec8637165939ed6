"""Publish domain events that trigger workflows, from any service, with no worker in-process.

    with EventPublisher("kafka:9092", source="/helpdesk") as events: events.publish("ticket.resolved", {"ticket": 42}, subject="ticket-42")

A secured cluster: `EventPublisher(KafkaConnection.load("client.properties"), source=...)`,
the Kafka client properties file the workers take (`--kafka-config`, docs/kafka.md).

Each event is a CloudEvent on topic `events.<first segment of its type>`
(`ticket.resolved` -> `events.ticket`), keyed by its subject, else its id, so
the events about one subject stay in order. The publisher never creates
topics: where the cluster does not auto-create them (`auto.create.topics.enable`
is often off in production), create each `events.*` topic with the
partitions and replication it needs before publishing; until then `flush`
reports the events as undelivered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from braidflow.access import DEFAULT_TENANT
from braidflow.kafka_connection import KafkaConnection
from braidflow.schemas.cloudevents import (
    CloudEvent,
    check_topic_prefix,
    new_event,
    to_binary,
    to_structured,
    topic_for,
)
from braidflow.tenants import events_prefix_for

__all__ = ["CloudEvent", "EventPublisher", "KafkaConnection", "PublishError", "new_event"]

PRODUCER_DEFAULTS: Mapping[str, Any] = {
    # The Java client's key hash: a subject lands on the same partition whichever
    # client (Java, librdkafka, aiokafka) published it.
    "partitioner": "murmur2_random",
    "acks": "all",
    "linger.ms": 5,
    "socket.nagle.disable": True,
}
QUEUE_FULL_WAIT_S = 10.0

Encoder = Callable[[CloudEvent], tuple[list[tuple[str, bytes]], bytes]]


class PublishError(RuntimeError):
    """Events the broker did not take: refused, timed out, or still queued at `flush`."""


class EventPublisher:
    """A Kafka producer of CloudEvents; `flush` (or leaving the `with` block) waits for delivery.

    `tenant`: publish on that tenant's topics (`tenants.T.events.<segment>`, docs/tenants.md);
    the default tenant's are `topic_prefix` plus the segment.
    """

    def __init__(
        self,
        broker: KafkaConnection | str,
        *,
        source: str,
        topic_prefix: str = "events.",
        mode: Literal["structured", "binary"] = "structured",
        config: Mapping[str, Any] | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> None:
        if not isinstance(source, str) or not source:
            raise ValueError("source must be a non-empty URI reference, e.g. /helpdesk")
        if mode not in ("structured", "binary"):
            raise ValueError(f"mode must be 'structured' or 'binary', not {mode!r}")
        check_topic_prefix(topic_prefix)
        topic_prefix = events_prefix_for(tenant, topic_prefix)
        connection = (
            broker if isinstance(broker, KafkaConnection) else KafkaConnection.plain(broker)
        )
        self.broker = connection.address
        self.source = source
        self.topic_prefix = topic_prefix
        self.mode = mode
        self._encode: Encoder = to_structured if mode == "structured" else to_binary
        self._failures: list[str] = []
        self._producer = Producer(connection.confluent({**PRODUCER_DEFAULTS, **(config or {})}))

    def publish(
        self,
        type: str,
        data: Any = None,
        *,
        subject: str | None = None,
        id: str | None = None,
        department: str | None = None,
        key: str | None = None,
    ) -> CloudEvent:
        """Queue a new event of `type` and return it; delivery is confirmed by `flush`."""
        extensions = {} if department is None else {"department": department}
        event = new_event(
            type, data, source=self.source, subject=subject, id=id, extensions=extensions
        )
        return self.publish_event(event, key=key)

    def publish_event(self, event: CloudEvent, *, key: str | None = None) -> CloudEvent:
        """Queue an event built elsewhere (e.g. with `new_event`); key: subject, else id."""
        topic = topic_for(event.type, self.topic_prefix)
        headers, value = self._encode(event)
        record_key = (key if key is not None else event.subject or event.id).encode()
        deadline = time.monotonic() + QUEUE_FULL_WAIT_S
        while True:
            try:
                self._producer.produce(
                    topic, value, record_key, headers=headers, on_delivery=self._delivered
                )
                break
            except BufferError:
                # librdkafka's local queue is full: serve deliveries to make room, for a while.
                if time.monotonic() > deadline:
                    raise PublishError(
                        f"the send queue to {self.broker} stayed full for {QUEUE_FULL_WAIT_S:g} s"
                    ) from None
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise PublishError(f"cannot publish {event.type} to {topic}: {exc}") from None
        self._producer.poll(0)
        return event

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")

    def flush(self, timeout: float = 10) -> None:
        """Wait until every queued event is acknowledged; raise `PublishError` for any that is not."""
        left = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        problems = []
        if left:
            problems.append(f"{left} still queued for {self.broker} after {timeout:g} s")
        if failures:
            shown = "; ".join(failures[:3]) + ("; ..." if len(failures) > 3 else "")
            problems.append(f"{len(failures)} failed ({shown})")
        if problems:
            raise PublishError("events not delivered: " + ", ".join(problems))

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.flush()
