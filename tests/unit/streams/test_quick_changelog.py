"""A table's changelog rows go into the producer's batch as written, in order (`quick_changelog`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.protocol.metadata import MetadataResponse_v0
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from braidflow.config import Settings
from braidflow.streams.app import create_app
from braidflow.streams.event_scope import acting_for
from braidflow.streams.partitioner import KeyPartitioner

SOURCE = "transitions"


class Store(dict[Any, Any]):
    """A table's store that keeps the changelog offsets it is told of."""

    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[TopicPartition, int] = {}

    def set_persisted_offset(self, tp: TopicPartition, offset: int) -> None:
        self.persisted[tp] = offset


class Message:
    topic = SOURCE
    partition = 2


class Event:
    message = Message()


@pytest.fixture
async def table(tmp_path: Path) -> AsyncIterator[Any]:
    """The executions table, a store of its own, Faust's producer an aiokafka one not started."""
    app = create_app(Settings(data_dir=tmp_path, partitions=4)).app
    executions = app.tables["executions"]
    executions._data = Store()
    executions._verified_source_topics_for_partitions.add(SOURCE)
    producer = AIOKafkaProducer(partitioner=KeyPartitioner(), max_batch_size=2_000)
    app.producer._producer = producer  # type: ignore[attr-defined]
    yield executions
    await producer.stop()


def know_changelog(table: Any) -> AIOKafkaProducer:
    producer: AIOKafkaProducer = table.app.producer._producer
    partitions = [(0, p, 0, [0], [0]) for p in range(4)]
    topics = [(0, table.changelog_topic_name, partitions)]
    producer.client.cluster.update_metadata(MetadataResponse_v0([(0, "127.0.0.1", 9092)], topics))
    return producer


def rows_in_batches(producer: AIOKafkaProducer, tp: TopicPartition) -> Iterator[Any]:
    for batch in producer._message_accumulator._batches.get(tp, ()):
        records = MemoryRecords(bytes(batch._builder._build()))
        while records.has_next():
            yield from records.next_batch()


async def test_a_row_is_in_the_producer_s_batch_as_the_table_is_written(table: Any) -> None:
    producer = know_changelog(table)
    with acting_for(Event()):  # type: ignore[arg-type]
        table[b"e1"] = b"state"
        del table[b"e1"]
    assert table.app.producer.buffer.size == 0
    tp = TopicPartition(table.changelog_topic_name, Message.partition)
    rows = [(r.key, r.value) for r in rows_in_batches(producer, tp)]
    assert rows == [(b"e1", b"state"), (b"e1", None)]


async def test_rows_keep_their_order_across_full_batches(table: Any) -> None:
    producer = know_changelog(table)
    with acting_for(Event()):  # type: ignore[arg-type]
        for i in range(30):
            table[f"e{i}".encode()] = b"s" * 300
    tp = TopicPartition(table.changelog_topic_name, Message.partition)
    assert len(producer._message_accumulator._batches[tp]) > 1
    assert [r.key for r in rows_in_batches(producer, tp)] == [f"e{i}".encode() for i in range(30)]
    assert table.app.producer.buffer.size == 0


async def test_rows_after_one_in_faust_s_buffer_follow_it_there(table: Any) -> None:
    with acting_for(Event()):  # type: ignore[arg-type]
        table[b"e1"] = b"first"  # the changelog is not in the producer's metadata yet
        know_changelog(table)
        table[b"e1"] = b"second"
    pending = table.app.producer.buffer.pending._queue
    assert [fut.message.value for fut in pending] == [b"first", b"second"]


async def test_an_acknowledged_row_s_offset_is_noted_for_recovery(table: Any) -> None:
    producer = know_changelog(table)
    with acting_for(Event()):  # type: ignore[arg-type]
        table[b"e1"] = b"state"
        table[b"e2"] = b"state"
    tp = TopicPartition(table.changelog_topic_name, Message.partition)
    (batch,) = producer._message_accumulator._batches[tp]
    batch.done(base_offset=40)
    # The futures' callbacks run on the loop's next turn, the offset is noted on the one after.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert table.data.persisted == {tp: 41}


async def test_rows_acknowledged_together_note_their_partition_s_offset_once(table: Any) -> None:
    producer = know_changelog(table)
    noted: list[tuple[TopicPartition, int]] = []
    table.data.set_persisted_offset = lambda tp, offset: noted.append((tp, offset))
    with acting_for(Event()):  # type: ignore[arg-type]
        for i in range(5):
            table[f"e{i}".encode()] = b"state"
    tp = TopicPartition(table.changelog_topic_name, Message.partition)
    (batch,) = producer._message_accumulator._batches[tp]
    batch.done(base_offset=40)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert noted == [(tp, 44)]


@pytest.mark.parametrize("unlike", ["exactly once", "a value serializer", "a partitioner"])
async def test_rows_of_a_table_faust_would_write_otherwise_take_its_buffer(
    table: Any, unlike: str
) -> None:
    if unlike == "exactly once":
        table.app.conf.processing_guarantee = "exactly_once"
    elif unlike == "a value serializer":
        table.value_serializer = "json"
    else:
        table.use_partitioner = True
    producer = know_changelog(table)
    with acting_for(Event()):  # type: ignore[arg-type]
        table.on_key_set(b"e1", b"state")
    assert not producer._message_accumulator._batches
    assert table.app.producer.buffer.size == 1
