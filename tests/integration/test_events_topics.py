"""A worker creates an events topic before it first publishes to it: a broker may not."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import AdminClient

from braidflow.config import Settings
from braidflow.kafka_connection import KafkaConnection
from braidflow.streams.topics import EventsTopics


def partitions_of(broker: str, topic: str) -> int:
    metadata = AdminClient({"bootstrap.servers": broker}).list_topics(topic, timeout=10)
    return len(metadata.topics[topic].partitions)


async def test_a_missing_events_topic_is_created_with_the_workers_partitions(broker: str) -> None:
    # Not 4: the embedded broker creates a topic it is asked about with 4 partitions.
    topics = EventsTopics(Settings(kafka=KafkaConnection.plain(broker), partitions=3))
    topic = f"events.t{uuid.uuid4().hex[:10]}"
    await topics.ensure(topic)
    assert partitions_of(broker, topic) == 3
    # Asked again, nothing is done: the worker remembers it.
    await topics.ensure(topic)
    assert partitions_of(broker, topic) == 3


async def test_an_events_topic_made_elsewhere_is_left_as_it_is(broker: str) -> None:
    topic = f"events.t{uuid.uuid4().hex[:10]}"
    assert partitions_of(broker, topic) == 4  # made by another service, as it were
    await EventsTopics(Settings(kafka=KafkaConnection.plain(broker), partitions=3)).ensure(topic)
    assert partitions_of(broker, topic) == 4
