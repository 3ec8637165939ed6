"""What a read model gets of the messages its projection's librdkafka consumer took."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import confluent_kafka
from aiokafka import TopicPartition

from braidflow.connectors.projection import Record, TopicProjection
from braidflow.connectors.read_model_db import fresh_records
from braidflow.kafka_connection import KafkaConnection

TOPIC = "p.lifecycle"


@dataclass
class Message:
    """The part of confluent-kafka's `Message` a projection reads."""

    partition_: int
    offset_: int
    value_: bytes | None = b"v"
    key_: bytes | None = b"k"
    headers_: list[tuple[str, bytes]] | None = field(default_factory=lambda: [("ce_type", b"t")])
    error_: confluent_kafka.KafkaError | None = None
    headers_asked: int = 0

    def error(self) -> confluent_kafka.KafkaError | None:
        return self.error_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def headers(self) -> list[tuple[str, bytes]] | None:
        self.headers_asked += 1
        return self.headers_


def projection_of(partitions: int) -> TopicProjection:
    projection = TopicProjection(
        store=None,  # type: ignore[arg-type]
        apply=lambda records, positions: None,
        connection=KafkaConnection.plain("127.0.0.1:9"),
        topic=TOPIC,
        name="test",
    )
    # As following the topic's partitions leaves it.
    projection._by_number = {p: TopicPartition(TOPIC, p) for p in range(partitions)}
    return projection


def test_a_take_becomes_records_by_partition_in_their_order() -> None:
    messages: list[Any] = [Message(1, 7), Message(0, 3), Message(1, 8, headers_=None)]
    batch = projection_of(2)._batch(messages)
    assert batch == {
        TopicPartition(TOPIC, 1): [
            Record(TOPIC, 1, 7, b"k", b"v", [("ce_type", b"t")]),
            Record(TOPIC, 1, 8, b"k", b"v", ()),
        ],
        TopicPartition(TOPIC, 0): [Record(TOPIC, 0, 3, b"k", b"v", [("ce_type", b"t")])],
    }


def test_a_take_turns_no_messages_headers_into_python_until_they_are_read() -> None:
    # confluent-kafka makes them Python objects on the first call: 7 - 8 us a record.
    messages = [Message(0, 3), Message(0, 4, headers_=None)]
    [with_headers, without] = projection_of(1)._batch(list(messages))[TopicPartition(TOPIC, 0)]
    assert [m.headers_asked for m in messages] == [0, 0]
    assert list(with_headers.headers) == [("ce_type", b"t")]
    assert dict(with_headers.headers) == {"ce_type": b"t"}
    assert (len(with_headers.headers), with_headers.headers[0]) == (1, ("ce_type", b"t"))
    assert list(without.headers) == [] and not without.headers
    assert messages[0].headers_asked > 0


def test_a_message_carrying_an_error_is_skipped() -> None:
    failed = Message(
        0, -1, error_=confluent_kafka.KafkaError(confluent_kafka.KafkaError._TRANSPORT)
    )
    messages: list[Any] = [failed, Message(0, 4)]
    assert projection_of(1)._batch(messages) == {
        TopicPartition(TOPIC, 0): [Record(TOPIC, 0, 4, b"k", b"v", [("ce_type", b"t")])]
    }


def test_fresh_records_are_those_at_or_past_their_partitions_stored_position() -> None:
    records = [Record(TOPIC, p, offset, None, b"", ()) for p in (0, 1) for offset in (4, 5, 6)]
    stored = {TopicPartition(TOPIC, 0): 5, TopicPartition(TOPIC, 1): 0}
    assert [(r.partition, r.offset) for r in fresh_records(records, stored)] == [
        (0, 5),
        (0, 6),
        (1, 4),
        (1, 5),
        (1, 6),
    ]
