"""A projection behind its topic stores what it reads in batches of at most BATCH_RECORDS
records, every record once and in its partition's order: the records in hand stay bounded
however far behind it is. What it fetches ahead is bounded too (`CONSUMER_QUEUE_KIB`), yet a
record larger than that bound still comes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from suite_broker import SuiteBroker

from braidflow.config import CONSUMER_QUEUE_KIB
from braidflow.connectors.projection import BATCH_RECORDS, Record, TopicProjection
from braidflow.connectors.read_model_db import ReadModel

BEHIND = 2 * BATCH_RECORDS + 500


async def test_a_projection_far_behind_stores_bounded_batches(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    topic = f"{prefix}.behind"
    admin = AdminClient(broker.confluent())
    for created in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        created.result(30)
    producer = AIOKafkaProducer(**broker.aiokafka(), linger_ms=50)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"%d" % i, key=b"%d" % (i % 7)) for i in range(BEHIND)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    model = ReadModel(tmp_path / "behind.sqlite", "")
    batches: list[int] = []
    read: dict[int, list[int]] = {}

    def apply(records: Sequence[Record], positions: Mapping[TopicPartition, int]) -> None:
        with model.storing(positions):
            batches.append(len(records))
            for record in records:
                assert record.value is not None
                read.setdefault(record.partition, []).append(int(record.value))

    projection = TopicProjection(model, apply, broker.connection, topic, name="behind")
    await projection.start()
    try:
        async with asyncio.timeout(60):
            while sum(batches) < BEHIND:
                await asyncio.sleep(0.05)
    finally:
        await projection.stop()
        model.close()
    assert sum(batches) == BEHIND
    assert max(batches) <= BATCH_RECORDS
    assert sorted(v for values in read.values() for v in values) == list(range(BEHIND))
    for values in read.values():
        assert values == sorted(values)


async def _one_partition_topic(
    broker: SuiteBroker, topic: str, values: Sequence[bytes], max_request_size: int = 1 << 20
) -> None:
    """`topic` made with one partition and `values` written to it in order."""
    admin = AdminClient(broker.confluent())
    for created in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        created.result(30)
    producer = AIOKafkaProducer(**broker.aiokafka(), max_request_size=max_request_size)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def _values_projection(
    broker: SuiteBroker, topic: str, model: ReadModel, read: list[bytes], **options: Any
) -> TopicProjection:
    """A projection of `topic` into `model` that appends each record's value to `read`."""

    def apply(records: Sequence[Record], positions: Mapping[TopicPartition, int]) -> None:
        with model.storing(positions):
            read.extend(record.value or b"" for record in records)

    return TopicProjection(model, apply, broker.connection, topic, name=topic, **options)


async def test_a_record_larger_than_a_projection_s_fetch_ahead_is_still_read(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    topic = f"{prefix}.large"
    bound = CONSUMER_QUEUE_KIB * 1024
    values = [b"small", b"x" * (bound + bound // 4), b"after"]
    await _one_partition_topic(broker, topic, values, max_request_size=2 * bound)
    model = ReadModel(tmp_path / "large.sqlite", "")
    read: list[bytes] = []
    projection = _values_projection(broker, topic, model, read)
    await projection.start()
    try:
        async with asyncio.timeout(60):
            while len(read) < len(values):
                await asyncio.sleep(0.05)
    finally:
        await projection.stop()
        model.close()
    assert read == values


async def test_a_caught_up_projection_says_so_while_its_fetch_waits_long(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    # The embedded broker holds a fetch for its whole wait; the end offsets asked on the
    # reading consumer's connection waited behind it, and a read of the API with them.
    topic = f"{prefix}.quiet"
    await _one_partition_topic(broker, topic, [b"only"])
    model = ReadModel(tmp_path / "quiet.sqlite", "")
    read: list[bytes] = []
    projection = _values_projection(broker, topic, model, read, fetch_max_wait_ms=10_000)
    await projection.start()
    try:
        assert await projection.wait_caught_up(30)
        for _ in range(3):
            assert await projection.wait_caught_up(2.0)
    finally:
        await projection.stop()
        model.close()
    assert read == [b"only"]
