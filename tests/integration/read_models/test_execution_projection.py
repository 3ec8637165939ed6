"""The execution index follows the lifecycle topic of a real broker and resumes where it stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from counting_index import Counting
from read_model_stores import ReadModelAt
from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.connectors import execution_index
from braidflow.connectors.execution_index import ExecutionIndex, ExecutionProjection
from braidflow.engine.messages import LifecycleEvent
from braidflow.schemas import encode_event
from braidflow.streams.topics import ensure_topics

WAIT_S = 30.0
NOW = 1_700_000_000_000
PARTITIONS = 4


class CountingIndex(Counting, ExecutionIndex):
    """An execution index that counts what it stores (`applied`)."""


@pytest.fixture
def topic(broker: SuiteBroker, prefix: str) -> str:
    settings = Settings(kafka=broker.connection, prefix=prefix, partitions=PARTITIONS)
    ensure_topics(settings)
    return settings.topics.lifecycle


def lifecycle(
    execution_id: str, workflow_id: str, status: str | None, at: int
) -> list[LifecycleEvent]:
    """An execution's workflow and node events: started, one node, and `status` unless None."""
    common = {
        "execution_id": execution_id,
        "workflow_id": workflow_id,
        "workflow_version": 1,
    }
    trigger = {"id": f"evt-{execution_id}", "type": "order.placed", "source": "/shop"}
    events = [
        LifecycleEvent(
            id=f"{execution_id}/started",
            type="workflow.started",
            at=at,
            data={"input": {"n": 1}, "event": trigger},
            **common,
        ),
        LifecycleEvent(
            id=f"{execution_id}/ship/started",
            type="node.started",
            at=at + 1,
            node_id="ship",
            attempt=1,
            **common,
        ),
    ]
    if status is not None:
        events.append(
            LifecycleEvent(
                id=f"{execution_id}/{status}", type=f"workflow.{status}", at=at + 2, **common
            )
        )
    return events


async def publish(producer: AIOKafkaProducer, topic: str, events: Iterable[LifecycleEvent]) -> int:
    """Send `events` keyed by execution id, as the orchestrator does; how many were sent."""
    sent = [
        await producer.send(topic, encode_event(e), key=e.execution_id.encode()) for e in events
    ]
    for delivery in sent:
        await delivery
    return len(sent)


async def follow(index: ExecutionIndex, broker: SuiteBroker, topic: str) -> ExecutionProjection:
    projection = ExecutionProjection(index, broker.connection, topic, fetch_max_wait_ms=5)
    await projection.start()
    assert await projection.wait_caught_up(WAIT_S), "the projection did not catch up"
    return projection


def ids(executions: list[dict[str, object]]) -> list[object]:
    return [e["execution_id"] for e in executions]


async def test_executions_of_a_workflow_are_listed_from_the_lifecycle_topic(
    broker: SuiteBroker, topic: str, producer: AIOKafkaProducer, read_model_at: ReadModelAt
) -> None:
    events = [
        *lifecycle("o1", "orders", "completed", NOW),
        *lifecycle("o2", "orders", "failed", NOW + 10),
        *lifecycle("o3", "orders", None, NOW + 20),
        *lifecycle("r1", "refunds", "cancelled", NOW + 30),
    ]
    await publish(producer, topic, events)
    # A record no codec can read must be skipped, not stall its partition.
    await producer.send_and_wait(topic, b"not avro", key=b"o1")
    await publish(producer, topic, lifecycle("o4", "orders", "completed", NOW + 40))

    index = ExecutionIndex(read_model_at("executions-index"))
    projection = await follow(index, broker, topic)
    try:
        orders = index.list("orders")
        assert ids(orders) == ["o4", "o3", "o2", "o1"]
        assert [e["status"] for e in orders] == ["completed", "running", "failed", "completed"]
        assert orders[0]["event"] == {"id": "evt-o4", "type": "order.placed", "source": "/shop"}
        assert ids(index.list("orders", status="running")) == ["o3"]
        assert ids(index.list("orders", limit=1)) == ["o4"]
        assert [e["status"] for e in index.list("refunds")] == ["cancelled"]
    finally:
        await projection.stop()
        index.close()


async def test_a_restarted_projection_resumes_without_rereading_or_missing(
    broker: SuiteBroker, topic: str, producer: AIOKafkaProducer, read_model_at: ReadModelAt
) -> None:
    path = read_model_at("executions-index")
    first_batch = [
        *lifecycle("o1", "orders", "completed", NOW),
        *lifecycle("o2", "orders", None, NOW + 10),
    ]
    sent = await publish(producer, topic, first_batch)
    index = CountingIndex(path)
    projection = await follow(index, broker, topic)
    await projection.stop()
    index.close()
    assert index.applied == sent

    # While no projection runs, o2 ends and o3 starts.
    second_batch = [
        LifecycleEvent(
            id="o2/failed",
            type="workflow.failed",
            execution_id="o2",
            workflow_id="orders",
            workflow_version=1,
            at=NOW + 15,
        ),
        *lifecycle("o3", "orders", None, NOW + 20),
    ]
    sent_later = await publish(producer, topic, second_batch)
    index = CountingIndex(path)
    projection = await follow(index, broker, topic)
    try:
        assert index.applied == sent_later
        assert sum(index.positions().values()) == sent + sent_later
        orders = index.list("orders")
        assert ids(orders) == ["o3", "o2", "o1"]
        assert [e["status"] for e in orders] == ["running", "failed", "completed"]
    finally:
        await projection.stop()
        index.close()


async def test_an_index_at_the_end_of_a_batch_of_several_records_is_not_rebuilt(
    broker: SuiteBroker, topic: str, producer: AIOKafkaProducer, read_model_at: ReadModelAt
) -> None:
    # One key, sent before any is awaited: one batch of three records in one partition. The
    # embedded broker reports that partition's end as the batch's first offset plus one, which
    # the stored position is past: only a fetch's answer tells it is not recreated.
    path = read_model_at("executions-index")
    sent = await publish(producer, topic, lifecycle("o1", "orders", "completed", NOW))
    index = ExecutionIndex(path)
    projection = await follow(index, broker, topic)
    await projection.stop()
    positions = index.positions()
    index.close()
    assert sum(positions.values()) == sent

    again = CountingIndex(path)
    projection = await follow(again, broker, topic)
    try:
        assert again.applied == 0
        assert again.positions() == positions
        assert ids(again.list("orders")) == ["o1"]
    finally:
        await projection.stop()
        again.close()


@pytest.mark.parametrize("built_from", ["another topic", "a topic since recreated"])
async def test_an_index_built_from_another_log_is_rebuilt(
    broker: SuiteBroker,
    topic: str,
    producer: AIOKafkaProducer,
    read_model_at: ReadModelAt,
    built_from: str,
) -> None:
    path = read_model_at("executions-index")
    stale = ExecutionIndex(path)
    read_to = TopicPartition("other" if built_from == "another topic" else topic, 0)
    stale.apply_many(lifecycle("old", "orders", None, NOW), {read_to: 99})
    stale.close()
    await publish(producer, topic, lifecycle("o1", "orders", "completed", NOW + 10))

    index = ExecutionIndex(path)
    projection = await follow(index, broker, topic)
    try:
        assert ids(index.list("orders")) == ["o1"]
        assert all(tp.topic == topic for tp in index.positions())
    finally:
        await projection.stop()
        index.close()


async def test_a_topic_created_after_the_start_is_followed_once_it_appears(
    broker: SuiteBroker,
    prefix: str,
    producer: AIOKafkaProducer,
    read_model_at: ReadModelAt,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same re-check picks up partitions added to the topic (which the test broker cannot do).
    monkeypatch.setattr(execution_index, "PARTITION_CHECK_S", 0.2)
    settings = Settings(kafka=broker.connection, prefix=prefix, partitions=PARTITIONS)
    topic = settings.topics.lifecycle
    index = ExecutionIndex(read_model_at("executions-index"))
    projection = ExecutionProjection(index, broker.connection, topic, fetch_max_wait_ms=5)
    await projection.start()
    try:
        ensure_topics(settings)
        await publish(producer, topic, lifecycle("late", "orders", "completed", NOW))
        async with asyncio.timeout(WAIT_S):
            # The index is the projection's, which writes it on its thread meanwhile (PostgreSQL).
            while not await index.off_loop(index.positions):
                await asyncio.sleep(0.05)
        assert await projection.wait_caught_up(WAIT_S)
        assert [e["status"] for e in index.list("orders")] == ["completed"]
    finally:
        await projection.stop()
        index.close()


async def test_a_projection_asked_right_after_its_topic_is_made_has_read_it(
    broker: SuiteBroker, prefix: str, producer: AIOKafkaProducer, read_model_at: ReadModelAt
) -> None:
    # Its client learnt no partitions at its start: the topic did not exist then, as on
    # Apache Kafka for a topic made just before (its first metadata names no topic).
    settings = Settings(kafka=broker.connection, prefix=prefix, partitions=PARTITIONS)
    topic = settings.topics.lifecycle
    index = ExecutionIndex(read_model_at("executions-index"))
    projection = ExecutionProjection(index, broker.connection, topic, fetch_max_wait_ms=5)
    await projection.start()
    try:
        ensure_topics(settings)
        await publish(producer, topic, lifecycle("o1", "orders", "completed", NOW))
        assert await projection.wait_caught_up(WAIT_S)
        assert ids(index.list("orders")) == ["o1"]
    finally:
        await projection.stop()
        index.close()
