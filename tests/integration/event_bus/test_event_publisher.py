"""`EventPublisher` against the embedded broker: what a consumer on the cluster reads back.

Topics are created up front, as an operator would on a cluster that does not
auto-create them; the publisher itself never creates topics.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Literal

import pytest
from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from suite_broker import SuiteBroker

from braidflow.client import EventPublisher, PublishError, new_event
from braidflow.connectors.broker import free_port
from braidflow.schemas.cloudevents import (
    events_topic_regex,
    from_kafka,
    to_binary,
    to_structured,
    topic_for,
)

WAIT_S = 30.0
PARTITIONS = 3


@pytest.fixture
def events_prefix(prefix: str) -> str:
    return f"{prefix}.events."


def create_topics(broker: SuiteBroker, topics: Iterable[str], partitions: int = PARTITIONS) -> None:
    admin = AdminClient(broker.confluent())
    created = admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    for future in created.values():
        future.result(timeout=10)


def consume(
    broker: SuiteBroker, subscription: str, count: int, settle_s: float = 0.0
) -> list[Message]:
    """`count` records from a fresh consumer group, then whatever else arrives within `settle_s`."""
    consumer = Consumer(
        broker.confluent(
            {
                "group.id": f"test-client-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 5,
                # Tansu answers a group join after about the rebalance timeout: keep it short.
                "max.poll.interval.ms": 3000,
                "session.timeout.ms": 3000,
                "heartbeat.interval.ms": 1000,
            }
        )
    )
    consumer.subscribe([subscription])
    records: list[Message] = []
    try:
        deadline = time.monotonic() + WAIT_S
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                records.append(message)
        settled = time.monotonic() + settle_s
        while time.monotonic() < settled:
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                records.append(message)
    finally:
        consumer.close()
    assert len(records) >= count, f"read {len(records)} of {count} records from {subscription}"
    return records


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_a_published_event_reads_back_as_it_was_sent(
    broker: SuiteBroker, events_prefix: str, mode: Literal["structured", "binary"]
) -> None:
    topic = topic_for("ticket.resolved", events_prefix)
    create_topics(broker, [topic])
    with EventPublisher(
        broker.connection, source="/helpdesk", topic_prefix=events_prefix, mode=mode
    ) as p:
        sent = p.publish(
            "ticket.resolved",
            {"ticket": 42, "priority": "high"},
            subject="ticket-42",
            department="support",
        )

    [record] = consume(broker, topic, 1)
    received = from_kafka(record.headers(), record.value())
    assert received == sent
    assert (received.id, received.type, received.source, received.subject) == (
        sent.id,
        "ticket.resolved",
        "/helpdesk",
        "ticket-42",
    )
    assert received.data == {"ticket": 42, "priority": "high"}
    assert received.department == "support"
    assert record.key() == b"ticket-42"
    encode = to_structured if mode == "structured" else to_binary
    assert record.headers() == encode(sent)[0]


def test_binary_mode_carries_the_attributes_in_ce_headers(
    broker: SuiteBroker, events_prefix: str
) -> None:
    topic = topic_for("ticket.resolved", events_prefix)
    create_topics(broker, [topic])
    with EventPublisher(
        broker.connection, source="/helpdesk", topic_prefix=events_prefix, mode="binary"
    ) as p:
        sent = p.publish("ticket.resolved", {"ticket": 7}, subject="ticket-7", id="evt-7")

    [record] = consume(broker, topic, 1)
    assert sent.time is not None
    headers = dict(record.headers())
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": b"evt-7",
        "ce_source": b"/helpdesk",
        "ce_type": b"ticket.resolved",
        "ce_subject": b"ticket-7",
        "ce_time": sent.time.encode(),
        "content-type": b"application/json",
    }
    assert record.value() == b'{"ticket":7}'


def test_events_of_one_subject_share_a_partition_chosen_as_java_clients_would(
    broker: SuiteBroker, events_prefix: str
) -> None:
    topic = topic_for("order.placed", events_prefix)
    create_topics(broker, [topic])
    with EventPublisher(broker.connection, source="/shop", topic_prefix=events_prefix) as publisher:
        for n in range(12):
            publisher.publish("order.placed", {"n": n}, subject=f"order-{n}")
        by_id = publisher.publish("order.placed", {"n": "no subject"})
        by_key = publisher.publish("order.placed", {"n": "keyed"}, subject="s", key="customer-9")

    records = consume(broker, topic, 14)
    keys = {from_kafka(r.headers(), r.value()).id: r.key() for r in records}
    assert {r.key() for r in records} >= {f"order-{n}".encode() for n in range(12)}
    assert keys[by_id.id] == by_id.id.encode()
    assert keys[by_key.id] == b"customer-9"
    for record in records:
        key = record.key()
        assert key is not None
        # murmur2 as the Java client (and aiokafka) hash keys: the same key, the same partition.
        assert record.partition() == (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def test_one_regex_subscription_reads_every_event_topic_and_nothing_beside_them(
    broker: SuiteBroker, events_prefix: str, prefix: str
) -> None:
    ticket, order = topic_for("ticket.x", events_prefix), topic_for("order.x", events_prefix)
    beside = [f"{ticket}.dlq", f"{prefix}.other.ticket", f"x{ticket}"]
    create_topics(broker, [ticket, order, *beside])
    headers, value = to_structured(new_event("ticket.resolved", source="/elsewhere"))
    producer = Producer(broker.confluent())
    for topic in beside:
        producer.produce(topic, value, headers=headers)
    assert producer.flush(10) == 0
    with EventPublisher(broker.connection, source="/s", topic_prefix=events_prefix) as publisher:
        sent = [publisher.publish("ticket.resolved"), publisher.publish("order.placed")]

    records = consume(broker, events_topic_regex(events_prefix), 2, settle_s=1.0)
    assert sorted(r.topic() for r in records) == sorted([ticket, order])
    assert {from_kafka(r.headers(), r.value()).id for r in records} == {e.id for e in sent}


def test_flush_reports_events_the_broker_never_took() -> None:
    publisher = EventPublisher(
        f"127.0.0.1:{free_port()}", source="/s", config={"message.timeout.ms": 500}
    )
    publisher.publish("ticket.resolved", {"ticket": 1})
    with pytest.raises(PublishError, match=r"1 still queued for 127\.0\.0\.1:\d+ after 0\.2 s"):
        publisher.flush(0.2)
    with pytest.raises(
        PublishError, match=r"1 failed \(events\.ticket: Local: Message timed out\)"
    ):
        publisher.flush(5)
