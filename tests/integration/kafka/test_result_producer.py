"""The result producer on the real broker: a result sent while nothing else is on its way goes
in a request of its own (`lone_request`), the others through aiokafka's sender as before; each
is acknowledged where a consumer finds it, key, value and traceparent header intact."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from braidflow.config import Settings
from braidflow.engine.messages import NodeCompleted
from braidflow.schemas import decode_transition
from braidflow.streams.partitioner import KeyPartitioner
from braidflow.streams.result_producer import ResultProducer
from tests.integration.suite_broker import SuiteBroker

PARTITIONS = 4
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _result(execution_id: str, node_id: str = "a") -> NodeCompleted:
    return NodeCompleted(f"{execution_id}:{node_id}/completed", execution_id, 1, node_id, 1, {})


async def _started(broker: SuiteBroker, prefix: str) -> tuple[ResultProducer, list[Any], list[str]]:
    """A started result producer on a topic of its own; what it acknowledged, and which
    results went through aiokafka's sender (`send_and_wait`), by execution id."""
    settings = Settings(kafka=broker.connection, prefix=prefix)
    admin = AIOKafkaAdminClient(**broker.aiokafka())
    await admin.start()
    await admin.create_topics([NewTopic(settings.topics.transitions, PARTITIONS, 1)])
    await admin.close()
    results = ResultProducer(settings)
    await results.start()
    acknowledged: list[Any] = []
    results.on_acknowledged = lambda *sent: acknowledged.append(sent)
    producer = results._producer
    assert producer is not None
    through_sender: list[str] = []
    send_and_wait = producer.send_and_wait

    async def noted(topic: str, value: bytes, **kwargs: Any) -> Any:
        through_sender.append(kwargs["key"].decode())
        return await send_and_wait(topic, value, **kwargs)

    producer.send_and_wait = noted  # type: ignore[method-assign]
    return results, acknowledged, through_sender


async def _records_at(
    broker: SuiteBroker, topic: str, sent: list[Any]
) -> dict[tuple[int, int], Any]:
    """The records at the acknowledged (partition, offset)s, read back."""
    consumer = AIOKafkaConsumer(**broker.aiokafka(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        wanted = {(partition, offset) for partition, offset, *_ in sent}
        found: dict[tuple[int, int], Any] = {}
        async with asyncio.timeout(30):
            while not wanted <= found.keys():
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.update({(r.partition, r.offset): r for r in records})
        return found
    finally:
        await consumer.stop()


async def test_a_result_sent_alone_is_acknowledged_where_it_is_read(
    broker: SuiteBroker, prefix: str
) -> None:
    results, acknowledged, through_sender = await _started(broker, prefix)
    try:
        # Once the producer knows the topic's partitions (the first send may need to learn
        # them through aiokafka), a result with nothing else on its way goes alone.
        await results.send(_result("warm"))
        for n in range(3):
            await results.send(_result(f"e{n}"), TRACEPARENT)
    finally:
        await results.stop()
    assert set(through_sender) <= {"warm"}
    found = await _records_at(broker, f"{prefix}.transitions", acknowledged)
    for n, (partition, offset, key, value, timestamp) in enumerate(acknowledged[1:]):
        assert key == f"e{n}".encode()
        assert partition == KeyPartitioner()(key, list(range(PARTITIONS)), [])
        record = found[(partition, offset)]
        assert (record.key, record.value, record.timestamp) == (key, value, timestamp)
        assert decode_transition(record.value) == _result(f"e{n}")
        assert record.headers == (("traceparent", TRACEPARENT.encode()),)


async def test_results_sent_together_go_through_the_sender_but_one(
    broker: SuiteBroker, prefix: str
) -> None:
    results, acknowledged, through_sender = await _started(broker, prefix)
    try:
        await results.send(_result("warm"))
        await asyncio.gather(*(results.send(_result(f"e{n}")) for n in range(20)))
    finally:
        await results.stop()
    # While one request of its own is on its way, the others are batched by the sender.
    assert len(set(through_sender) - {"warm"}) == 19
    found = await _records_at(broker, f"{prefix}.transitions", acknowledged)
    assert len({(p, o) for p, o, *_ in acknowledged}) == 21
    for partition, offset, key, value, _ in acknowledged:
        assert (found[(partition, offset)].key, found[(partition, offset)].value) == (key, value)
