"""Reading and writing braidflow's topics directly, as another service on the cluster would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from suite_broker import SuiteBroker


@dataclass(frozen=True, slots=True)
class TopicRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


def produce(
    broker: SuiteBroker,
    topic: str,
    key: bytes,
    value: bytes,
    partition: int | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Send one record (to `partition`, else by key) and wait for the broker's acknowledgement."""
    producer = Producer(broker.confluent({"linger.ms": 0, "acks": "all"}))
    errors: list[object] = []
    extra = {} if partition is None else {"partition": partition}
    producer.produce(
        topic,
        value,
        key,
        on_delivery=lambda err, _msg: errors.append(err) if err else None,
        **extra,
    )
    left = producer.flush(timeout_s)
    assert left == 0 and not errors, f"producing to {topic} failed: {errors or 'timed out'}"


def topic_partitions(
    broker: SuiteBroker,
    topic: str,
    client: Consumer | AdminClient | None = None,
    timeout_s: float = 10.0,
) -> list[int]:
    """The partitions of `topic`, read until the metadata has some: Apache Kafka answers
    for a topic just made before its partitions have leaders (LEADER_NOT_AVAILABLE, none
    listed). A topic that never appears within `timeout_s` raises its error."""
    client = client or AdminClient(broker.confluent())
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = client.list_topics(topic, timeout=timeout_s).topics[topic]
        if metadata.error is None and metadata.partitions:
            return sorted(metadata.partitions)
        if time.monotonic() > deadline:
            raise KafkaException(metadata.error or f"{topic} has no partitions")
        time.sleep(0.1)


class TopicReader:
    """Every record of every partition of a topic, from the beginning; no consumer group.

    `read_to_end` reads up to the end offsets of the moment; `until` keeps reading
    until a condition on what was read holds.
    """

    def __init__(self, broker: SuiteBroker, topic: str, timeout_s: float = 10.0) -> None:
        self.topic = topic
        self.records: list[TopicRecord] = []
        self._consumer = Consumer(
            broker.confluent(
                {
                    # Required by the client; never joined (assign, no subscribe) nor committed.
                    "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "fetch.wait.max.ms": 5,
                }
            )
        )
        self._partitions = topic_partitions(broker, topic, self._consumer, timeout_s)
        self._consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in self._partitions]
        )

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _poll(self, timeout_s: float) -> None:
        for message in self._consumer.consume(500, timeout=timeout_s):
            if message.error() is not None:
                raise KafkaException(message.error())
            self.records.append(
                TopicRecord(
                    message.partition(),
                    message.offset(),
                    message.key(),
                    message.value(),
                    tuple(message.headers() or ()),
                )
            )

    def read_to_end(self, timeout_s: float = 30.0) -> list[TopicRecord]:
        """Read until every partition is at its end, as fetches made after this call report it.

        The end is the high watermark of fetch responses, not a ListOffsets request:
        the embedded broker (Tansu 0.6) answers ListOffsets(latest) with the base offset
        of the partition's last batch plus one, short of the end when that batch holds
        several records.
        """
        deadline = time.monotonic() + timeout_s
        caught_up_before = False
        while True:
            self._poll(0.2)
            position = dict.fromkeys(self._partitions, 0)
            for record in self.records:
                position[record.partition] = max(position[record.partition], record.offset + 1)
            ends = {
                p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)[
                    1
                ]
                for p in self._partitions
            }
            caught_up = all(0 <= ends[p] <= position[p] for p in self._partitions)
            # Twice in a row, so the watermarks come from fetches made since the call.
            if caught_up and caught_up_before:
                return self.records
            caught_up_before = caught_up
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.topic}: read up to {position}, the end is at {ends}")

    def until(
        self, condition: Callable[[list[TopicRecord]], bool], timeout_s: float = 30.0
    ) -> list[TopicRecord]:
        """Read until `condition(records so far)` holds; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition(self.records):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.topic}: condition not met in {timeout_s}s")
            self._poll(0.2)
        return self.records
