"""The router's librdkafka producer: acknowledged offsets, key partitioning, refusals."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from suite_broker import SuiteBroker
from topic_records import TopicReader

from braidflow.streams.bulk_producer import BulkProducer, DeliveryError
from braidflow.streams.partitioner import KeyPartitioner

PARTITIONS = 6


@pytest.fixture
async def topic(broker: SuiteBroker) -> str:
    name = f"bulk-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**broker.aiokafka())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()
    return name


async def test_each_send_resolves_to_its_offset_on_the_partition_of_its_key(
    broker: SuiteBroker, topic: str
) -> None:
    producer = BulkProducer(broker.connection)
    await producer.start()
    try:
        keys = [f"execution-{i}".encode() for i in range(200)]
        futures = [await producer.queue(topic, key, b"start " + key) for key in keys]
        offsets = [await future for future in futures]
    finally:
        await producer.stop()
    with TopicReader(broker, topic) as reader:
        records = reader.read_to_end()
    assert len(records) == len(keys)
    where = {r.key: (r.partition, r.offset) for r in records}
    everywhere = list(range(PARTITIONS))
    faust = KeyPartitioner()
    for key, offset in zip(keys, offsets, strict=True):
        # Where Faust's tables expect the execution, or the start would never be applied.
        assert where[key] == (faust(key, everywhere, everywhere), offset)
    assert {r.value for r in records} == {b"start " + key for key in keys}


async def test_a_record_no_broker_takes_is_refused_at_once(broker: SuiteBroker, topic: str) -> None:
    producer = BulkProducer(broker.connection)
    await producer.start()
    try:
        with pytest.raises(DeliveryError, match="too large"):
            await producer.queue(topic, b"k", b"x" * 2_000_000)
        # The producer carries on.
        assert await (await producer.queue(topic, b"k", b"small")) >= 0
    finally:
        await producer.stop()


async def test_stop_waits_for_what_is_queued(broker: SuiteBroker, topic: str) -> None:
    producer = BulkProducer(broker.connection)
    await producer.start()
    futures = [await producer.queue(topic, f"k{i}".encode(), b"v") for i in range(50)]
    await producer.stop()
    assert all(f.done() and f.exception() is None for f in futures)
