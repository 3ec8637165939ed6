"""A worker creates an events topic before it first publishes to it: a broker may not."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import AdminClient, NewTopic
from suite_broker import SuiteBroker
from topic_records import topic_partitions

from braidflow.config import Settings
from braidflow.streams.topics import EventsTopics


def partitions_of(broker: SuiteBroker, topic: str) -> int:
    return len(topic_partitions(broker, topic))


async def test_a_missing_events_topic_is_created_with_the_workers_partitions(
    broker: SuiteBroker,
) -> None:
    # Not 4 nor 1: what the embedded broker and Apache Kafka give a topic made on demand.
    topics = EventsTopics(Settings(kafka=broker.connection, partitions=3))
    topic = f"events.t{uuid.uuid4().hex[:10]}"
    await topics.ensure(topic)
    assert partitions_of(broker, topic) == 3
    # Asked again, nothing is done: the worker remembers it.
    await topics.ensure(topic)
    assert partitions_of(broker, topic) == 3


async def test_an_events_topic_made_elsewhere_is_left_as_it_is(broker: SuiteBroker) -> None:
    topic = f"events.t{uuid.uuid4().hex[:10]}"
    # Made by another service, as it were, with partitions of its own choosing.
    admin = AdminClient(broker.confluent())
    admin.create_topics([NewTopic(topic, 5)])[topic].result(timeout=10)
    assert partitions_of(broker, topic) == 5
    await EventsTopics(Settings(kafka=broker.connection, partitions=3)).ensure(topic)
    assert partitions_of(broker, topic) == 5
