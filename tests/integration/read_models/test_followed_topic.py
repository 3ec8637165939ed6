"""A followed topic (the catalog's, the keys') is ready only once every record stored
before it started is read, a batch's last records too."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.streams.followed_topic import FollowedTopic

RECORDS = 50


async def unused_produce(topic: str, key: bytes, value: bytes) -> int:
    raise AssertionError("this follower only reads")


async def test_ready_only_after_every_record_of_a_batch_stored_before_start(
    broker: SuiteBroker, prefix: str
) -> None:
    topic = f"{prefix}.followed"
    admin = AdminClient(broker.confluent())
    for created in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        created.result(30)
    # One produce request, one batch of RECORDS records.
    producer = AIOKafkaProducer(**broker.aiokafka(), linger_ms=1_000)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"%d" % i, key=b"%d" % i) for i in range(RECORDS)]
        offsets = [(await s).offset for s in sent]
    finally:
        await producer.stop()
    assert offsets == list(range(RECORDS))
    partition = TopicPartition(topic, 0)
    if broker.embedded:
        # The trap this guards against: ListOffsets stops at the batch's first record.
        offsets_client = AIOKafkaConsumer(**broker.aiokafka())
        await offsets_client.start()
        try:
            assert (await offsets_client.end_offsets([partition]))[partition] < RECORDS
        finally:
            await offsets_client.stop()

    read: list[bytes | None] = []

    async def apply(value: bytes | None, _timestamp: int | None) -> None:
        read.append(value)
        await asyncio.sleep(0)

    follower = FollowedTopic(
        Settings(kafka=broker.connection, prefix=prefix).for_dev(), topic, unused_produce, apply
    )
    await follower.start()
    try:
        async with asyncio.timeout(30):
            await follower.ready.wait()
        assert read == [b"%d" % i for i in range(RECORDS)]
    finally:
        await follower.stop()
