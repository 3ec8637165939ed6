"""Several workers projecting one topic into one PostgreSQL database store each record once
and never take a row or a position back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from counting_index import Counting
from read_model_stores import ReadModelAt
from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.connectors.execution_index import ExecutionIndex, ExecutionProjection
from braidflow.connectors.read_model_db import PostgresLocation, read_model_location
from braidflow.engine.messages import LifecycleEvent
from braidflow.schemas import encode_event
from braidflow.streams.topics import ensure_topics

WAIT_S = 30.0
NOW = 1_700_000_000_000
PARTITIONS = 4
EXECUTIONS = 60


class CountingIndex(Counting, ExecutionIndex):
    """An execution index that counts what it stores (`applied`)."""


@pytest.fixture
def topic(broker: SuiteBroker, prefix: str) -> str:
    settings = Settings(kafka=broker.connection, prefix=prefix, partitions=PARTITIONS)
    ensure_topics(settings)
    return settings.topics.lifecycle


def history(n: int) -> list[LifecycleEvent]:
    common = {"execution_id": f"o{n}", "workflow_id": "orders", "workflow_version": 1}
    end = "completed" if n % 3 else "failed"
    return [
        LifecycleEvent(
            id=f"o{n}/started",
            type="workflow.started",
            at=NOW + n,
            data={"input": {"n": n}, "event": None},
            **common,
        ),
        LifecycleEvent(id=f"o{n}/{end}", type=f"workflow.{end}", at=NOW + n + 1, **common),
    ]


async def publish(producer: AIOKafkaProducer, topic: str, events: list[LifecycleEvent]) -> int:
    sent = [
        await producer.send(topic, encode_event(e), key=e.execution_id.encode()) for e in events
    ]
    for delivery in sent:
        await delivery
    return len(sent)


async def follow(index: ExecutionIndex, broker: SuiteBroker, topic: str) -> ExecutionProjection:
    projection = ExecutionProjection(index, broker.connection, topic, fetch_max_wait_ms=5)
    await projection.start()
    return projection


async def test_two_workers_following_one_topic_into_one_database_store_each_event_once(
    broker: SuiteBroker,
    topic: str,
    producer: AIOKafkaProducer,
    read_model_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    location = read_model_location(read_model_url, tmp_path, prefix, "executions-index")
    assert isinstance(location, PostgresLocation)
    sent = await publish(producer, topic, [e for n in range(EXECUTIONS) for e in history(n)])
    workers = [CountingIndex(location), CountingIndex(location)]
    projections = await asyncio.gather(*(follow(index, broker, topic) for index in workers))
    try:
        for projection in projections:
            assert await projection.wait_caught_up(WAIT_S), "a projection did not catch up"
        # More while both run: each new record is read by both, stored by one.
        sent += await publish(
            producer, topic, [e for n in range(EXECUTIONS, EXECUTIONS + 20) for e in history(n)]
        )
        for projection in projections:
            assert await projection.wait_caught_up(WAIT_S), "a projection did not catch up"

        assert sum(index.applied for index in workers) == sent
        first, second = (index.list("orders", limit=1000) for index in workers)
        assert first == second
        assert len(first) == EXECUTIONS + 20
        assert sum(e["status"] == "failed" for e in first) == len(range(0, EXECUTIONS + 20, 3))
        assert sum(workers[0].positions().values()) == sent
        with psycopg.connect(read_model_url) as conn:
            (rows,) = conn.execute(
                f'SELECT count(*) FROM "{location.schema}".executions'
            ).fetchone()
        assert rows == EXECUTIONS + 20
    finally:
        for projection in projections:
            await projection.stop()
        for index in workers:
            index.close()


def test_a_worker_that_lags_never_takes_a_position_back(read_model_at: ReadModelAt) -> None:
    index = ExecutionIndex(read_model_at("executions-index"))
    try:
        partition = TopicPartition("lifecycle", 0)
        index.apply_many(history(1), {partition: 10})
        index.apply_many(history(1), {partition: 4})
        assert index.positions() == {partition: 10}
    finally:
        index.close()


def test_a_claim_gives_the_stored_positions_of_the_partitions_asked(
    read_model_at: ReadModelAt,
) -> None:
    index = ExecutionIndex(read_model_at("executions-index"))
    try:
        stored, fresh = TopicPartition("lifecycle", 0), TopicPartition("lifecycle", 1)
        index.apply_many([], {stored: 7})
        with index.claimed([fresh, stored]) as claimed:
            assert claimed == {stored: 7, fresh: 0}
    finally:
        index.close()


async def test_a_dropped_connection_is_opened_again_for_reads_and_for_the_projection(
    broker: SuiteBroker,
    topic: str,
    producer: AIOKafkaProducer,
    read_model_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    location = read_model_location(read_model_url, tmp_path, prefix, "executions-index")
    index = ExecutionIndex(location)
    await publish(producer, topic, history(1))
    projection = await follow(index, broker, topic)
    try:
        assert await projection.wait_caught_up(WAIT_S)
        drop_connections(read_model_url)
        # The first read after the drop is answered, on a new connection.
        listed = await index.off_loop(index.list, "orders")
        assert [e["execution_id"] for e in listed] == ["o1"]

        drop_connections(read_model_url)
        await publish(producer, topic, history(2))
        assert await projection.wait_caught_up(WAIT_S), "the projection did not go on"
        listed = await index.off_loop(index.list, "orders")
        assert [e["execution_id"] for e in listed] == ["o2", "o1"]
    finally:
        await projection.stop()
        index.close()


def drop_connections(url: str) -> None:
    """End every other session of the database, as a server restart or failover does."""
    with psycopg.connect(url, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert dropped is not None and dropped[0] >= 1
