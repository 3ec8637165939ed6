"""A record for a known topic goes straight into its batch, exactly where aiokafka's send puts it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.protocol.metadata import MetadataResponse_v0
from aiokafka.structs import TopicPartition

from braidflow.config import Settings
from braidflow.streams import quick_send
from braidflow.streams.app import create_app
from braidflow.streams.partitioner import KeyPartitioner
from braidflow.streams.quick_send import open_batches, patch_quick_send, queued_now, sent_now


def metadata(partitions: dict[str, int], leaderless: frozenset[int] = frozenset()) -> object:
    topics = [
        (0, topic, [(0, p, -1 if p in leaderless else 0, [0], [0]) for p in range(count)])
        for topic, count in partitions.items()
    ]
    return MetadataResponse_v0(brokers=[(0, "127.0.0.1", 9092)], topics=topics)


_MADE: list[AIOKafkaProducer] = []


def producer_knowing(partitions: dict[str, int], **options: object) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(partitioner=KeyPartitioner(), **options)  # type: ignore[arg-type]
    producer.client.cluster.update_metadata(metadata(partitions))
    _MADE.append(producer)
    return producer


@pytest.fixture(autouse=True)
async def _stop_producers() -> AsyncIterator[None]:
    yield
    while _MADE:
        await _MADE.pop().stop()


@pytest.fixture
def partition_sets() -> Iterator[list[str]]:
    """The topics `ClusterMetadata.partitions_for_topic` was asked for, one a call."""
    asked: list[str] = []
    original = ClusterMetadata.partitions_for_topic

    def counting(self: ClusterMetadata, topic: str) -> set[int] | None:
        asked.append(topic)
        return original(self, topic)

    ClusterMetadata.partitions_for_topic = counting  # type: ignore[method-assign]
    try:
        yield asked
    finally:
        ClusterMetadata.partitions_for_topic = original  # type: ignore[method-assign]


async def test_a_send_to_a_known_topic_builds_no_partition_set(partition_sets: list[str]) -> None:
    patch_quick_send()
    producer = producer_knowing({"transitions": 4})
    futures = [await producer.send("transitions", b"v", key=f"e{i}".encode()) for i in range(20)]
    assert partition_sets == []
    assert all(not f.done() for f in futures)
    queued = sum(len(b[-1]._msg_futures) for b in producer._message_accumulator._batches.values())
    assert queued == 20


async def test_each_key_goes_where_aiokafka_sends_it() -> None:
    producer = producer_knowing({"transitions": 7})
    batches = producer._message_accumulator._batches
    for i in range(200):
        key = f"execution-{i}".encode()
        expected = TopicPartition(
            "transitions", producer._partition("transitions", None, key, b"v", key, b"v")
        )
        before = batches[expected][-1].record_count if batches.get(expected) else 0
        assert queued_now(producer, "transitions", b"v", key, None, None, None) is not None
        assert batches[expected][-1].record_count == before + 1


async def test_records_of_a_partition_keep_the_order_they_were_sent_in() -> None:
    producer = producer_knowing({"transitions": 4})
    for i in range(50):
        queued_now(producer, "transitions", str(i).encode(), b"same", None, 1_000 + i, None)
    (batches,) = [b for b in producer._message_accumulator._batches.values() if b]
    records = list(_records(batches[-1]._builder._build()))
    assert [r.value for r in records] == [str(i).encode() for i in range(50)]


def _records(buffer: bytes | bytearray) -> Iterator[object]:
    from aiokafka.record.memory_records import MemoryRecords

    batches = MemoryRecords(bytes(buffer))
    while batches.has_next():
        yield from batches.next_batch()


async def test_new_metadata_is_seen_at_the_next_send() -> None:
    producer = producer_knowing({"transitions": 1})
    queued_now(producer, "transitions", b"v", b"k", None, None, None)
    assert {tp.partition for tp in producer._message_accumulator._batches} == {0}
    producer.client.cluster.update_metadata(metadata({"transitions": 8}))
    keys = [f"k{i}".encode() for i in range(40)]
    for key in keys:
        queued_now(producer, "transitions", b"v", key, None, None, None)
    placed = {tp.partition for tp, batches in producer._message_accumulator._batches.items()}
    expected = {producer._partition("transitions", None, k, b"v", k, b"v") for k in keys}
    assert placed == expected | {0}
    assert len(expected) > 1


async def test_an_unkeyed_record_goes_to_a_partition_with_a_leader() -> None:
    producer = producer_knowing({})
    producer.client.cluster.update_metadata(metadata({"t": 4}, leaderless=frozenset({0, 1, 3})))
    for _ in range(20):
        queued_now(producer, "t", b"v", None, None, None, None)
    assert set(producer._message_accumulator._batches) == {TopicPartition("t", 2)}


async def test_what_must_wait_is_left_to_aiokafka() -> None:
    producer = producer_knowing({"known": 1}, max_batch_size=1_000)
    assert queued_now(producer, "unknown", b"v", b"k", None, None, None) is None
    assert queued_now(producer, "known", b"v", b"k", 3, None, None) is None
    while queued_now(producer, "known", b"v" * 100, b"k", None, None, None) is not None:
        pass  # until the partition's batch is full: then aiokafka's send waits for a drain
    assert len(producer._message_accumulator._batches[TopicPartition("known", 0)]) == 1


async def test_a_record_over_the_request_limit_is_refused_as_aiokafka_does() -> None:
    producer = producer_knowing({"known": 1}, max_request_size=1_000)
    with pytest.raises(MessageSizeTooLargeError):
        queued_now(producer, "known", b"v" * 2_000, b"k", None, None, None)


@pytest.mark.parametrize("batch_bytes", [500, 16_384])
async def test_a_record_over_the_request_limit_is_refused_behind_another_too(
    batch_bytes: int,
) -> None:
    # Batches smaller than a request, as braidflow's producers make them, and larger.
    patch_quick_send()
    producer = producer_knowing({"known": 1}, max_request_size=1_000, max_batch_size=batch_bytes)
    await producer.send("known", b"v", key=b"k")
    with pytest.raises(MessageSizeTooLargeError):
        await producer.send("known", b"v" * 2_000, key=b"k")
    with pytest.raises(MessageSizeTooLargeError):  # refused at once, or left to `send`
        if not sent_now(producer, "known", b"v" * 2_000, b"k", None, None, telling([]), None):
            await producer.send("known", b"v" * 2_000, key=b"k")
    with pytest.raises(MessageSizeTooLargeError):
        sent_now(
            producer, "known", b"v" * 2_000, b"k", None, None, telling([]), None,
            new_batch_when_full=True,
        )  # fmt: skip


def test_a_batch_holding_a_record_takes_none_past_its_size() -> None:
    # What lets a record joining such a batch go unmeasured (`quick_send._open_batch`).
    builder = BatchBuilder(1_000, 0)
    assert builder._relative_offset == 0
    assert builder.append(timestamp=None, key=b"k", value=b"v" * 2_000, headers=[]) is not None
    assert builder._relative_offset == 1
    builder = BatchBuilder(1_000, 0)
    assert builder.append(timestamp=None, key=b"k", value=b"v", headers=[]) is not None
    assert builder.append(timestamp=None, key=b"k", value=b"v" * 950, headers=[]) is None


def test_a_record_appended_now_is_the_one_batch_builder_append_writes() -> None:
    # `quick_send._record_appended` writes through the record builder under
    # `BatchBuilder.append`, keeping its count, its offsets and its closing when full.
    ours, theirs = BatchBuilder(1_000, 0), BatchBuilder(1_000, 0)
    records = [(b"k", b"v", [("h", b"1")]), (None, b"w", []), (b"k", b"x" * 950, [])]
    before = int(time.time() * 1000)
    for key, value, headers in records:
        appended = quick_send._record_appended(ours, key, value, headers)
        expected = theirs.append(timestamp=None, key=key, value=value, headers=headers)
        assert (appended is None) == (expected is None)
        if expected is not None:
            assert (appended.offset, appended.size) == (expected.offset, expected.size)
    assert (ours._relative_offset, ours._closed) == (theirs._relative_offset, theirs._closed)
    assert ours._closed  # refused the record it had no room for
    assert quick_send._record_appended(ours, b"k", b"v", []) is None
    written = [(r.offset, r.key, r.value, list(r.headers)) for r in _records(ours._build())]
    assert written == [
        (r.offset, r.key, r.value, list(r.headers)) for r in _records(theirs._build())
    ]
    assert all(before <= r.timestamp <= time.time() * 1000 for r in _records(ours._build()))


async def test_only_a_record_opening_a_batch_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[bytes] = []
    estimate = quick_send.estimate_size_in_bytes

    def measuring(key: bytes | None, value: bytes | None, headers: Any) -> int:
        measured.append(value or b"")
        return estimate(key, value, headers)

    monkeypatch.setattr(quick_send, "estimate_size_in_bytes", measuring)
    producer = producer_knowing({"t": 1}, max_request_size=10_000, max_batch_size=1_000)
    for value in (b"first", b"second", b"third"):
        assert sent_now(producer, "t", value, b"k", None, None, telling([]), None)
    assert measured == [b"first"]


async def test_faust_s_send_takes_headers_as_a_mapping(tmp_path: Path) -> None:
    parts = create_app(Settings(data_dir=tmp_path))
    faust_producer = parts.app.producer
    producer = faust_producer._new_producer()  # type: ignore[attr-defined]
    producer.client.cluster.update_metadata(metadata({"t": 2}))
    faust_producer._producer = producer  # type: ignore[attr-defined]
    _MADE.append(producer)
    future = await faust_producer.send("t", b"k", b"v", None, 1.5, {"h": b"1"})
    assert not future.done()
    (batches,) = [b for b in producer._message_accumulator._batches.values() if b]
    (record,) = _records(batches[-1]._builder._build())
    assert (record.key, record.value, record.timestamp) == (b"k", b"v", 1_500)
    assert list(record.headers) == [("h", b"1")]


Told = list[tuple[object, int, int, int]]


def telling(told: Told) -> Any:
    def acknowledged(argument: object, partition: int, offset: int, timestamp_ms: int) -> None:
        told.append((argument, partition, offset, timestamp_ms))

    return acknowledged


async def test_a_record_sent_now_has_no_future_and_is_told_of_its_batch_s_acknowledgement() -> None:
    producer = producer_knowing({"t": 1})
    told: Told = []
    for i in range(3):
        assert sent_now(producer, "t", b"v", b"k", None, None, telling(told), f"r{i}")
    (batch,) = producer._message_accumulator._batches[TopicPartition("t", 0)]
    assert batch._msg_futures == []
    stamps = [r.timestamp for r in _records(batch._builder._build())]
    batch.done(base_offset=40, timestamp=-1)  # -1: the broker kept the producer's timestamps
    await asyncio.sleep(0)
    assert told == [(f"r{i}", 0, 40 + i, stamps[i]) for i in range(3)]


async def test_the_broker_s_timestamp_is_told_when_it_set_one() -> None:
    producer = producer_knowing({"t": 1})
    told: Told = []
    sent_now(producer, "t", b"v", b"k", None, None, telling(told), "r")
    (batch,) = producer._message_accumulator._batches[TopicPartition("t", 0)]
    batch.done(base_offset=7, timestamp=1_234)
    await asyncio.sleep(0)
    assert told == [("r", 0, 7, 1_234)]


async def test_a_failed_batch_tells_no_one_and_its_error_is_retrieved() -> None:
    producer = producer_knowing({"t": 1})
    told: Told = []
    sent_now(producer, "t", b"v", b"k", None, None, telling(told), "r")
    (batch,) = producer._message_accumulator._batches[TopicPartition("t", 0)]
    batch.failure(KafkaTimeoutError())
    await asyncio.sleep(0)
    assert told == []
    assert not batch.future._log_traceback  # asyncio would report it as never retrieved


async def test_a_flush_waits_for_records_sent_now() -> None:
    producer = producer_knowing({"t": 1})
    sent_now(producer, "t", b"v", b"k", None, None, telling([]), "r")
    flush = asyncio.ensure_future(producer._message_accumulator.flush())
    await asyncio.sleep(0.01)
    assert not flush.done()
    (batch,) = producer._message_accumulator._batches[TopicPartition("t", 0)]
    batch.done(base_offset=0)
    await asyncio.wait_for(flush, 1)


async def test_a_full_batch_is_left_to_send_or_followed_by_another() -> None:
    producer = producer_knowing({"t": 1}, max_batch_size=1_000)
    tp = TopicPartition("t", 0)
    while sent_now(producer, "t", b"v" * 100, b"k", None, None, telling([]), None):
        pass
    assert len(producer._message_accumulator._batches[tp]) == 1
    told: Told = []
    assert sent_now(
        producer, "t", b"last", b"k", None, None, telling(told), "r", new_batch_when_full=True
    )
    first, second = producer._message_accumulator._batches[tp]
    assert [r.value for r in _records(second._builder._build())] == [b"last"]
    count = first.record_count
    first.done(base_offset=0)
    second.done(base_offset=count)
    await asyncio.sleep(0)
    assert [(a, offset) for a, _, offset, _ in told] == [("r", count)]


async def test_records_sent_now_and_queued_share_their_batch_s_offsets() -> None:
    producer = producer_knowing({"t": 1})
    told: Told = []
    first = queued_now(producer, "t", b"a", b"k", None, None, None)
    sent_now(producer, "t", b"b", b"k", None, None, telling(told), "b")
    third = queued_now(producer, "t", b"c", b"k", None, None, None)
    assert first is not None and third is not None
    (batch,) = producer._message_accumulator._batches[TopicPartition("t", 0)]
    batch.done(base_offset=10)
    await asyncio.sleep(0)
    assert (first.result().offset, third.result().offset) == (10, 12)
    assert [offset for _, _, offset, _ in told] == [11]


async def test_records_about_the_request_limit_are_refused_exactly_where_aiokafka_refuses_them() -> (
    None
):
    producer = producer_knowing({"known": 1}, max_request_size=1_000, max_batch_size=100_000)
    headers = [("ce_type", b"t" * 20), ("traceparent", b"0" * 55)]
    for size in range(800, 1_000):
        value = b"v" * size
        try:
            producer._serialize(b"k", value, headers)
        except MessageSizeTooLargeError:
            with pytest.raises(MessageSizeTooLargeError):
                queued_now(producer, "known", value, b"k", None, None, headers)
        else:
            assert queued_now(producer, "known", value, b"k", None, None, headers) is not None


async def test_a_run_of_records_goes_where_aiokafka_sends_each_and_is_told_in_order() -> None:
    producer = producer_knowing({"t": 5, "u": 3}, max_batch_size=1_000)
    batches = open_batches(producer)
    assert batches is not None
    told: Told = []
    keys = [f"execution-{i}".encode() for i in range(12)]
    for i, key in enumerate(keys):
        for topic in ("t", "u"):
            assert batches.append(topic, key, f"{topic}{i}".encode(), None, telling(told), i)
    assert not batches.append("unknown", b"k", b"v", None, telling(told), None)
    for tp, (batch,) in producer._message_accumulator._batches.items():
        expected = [
            f"{tp.topic}{i}".encode()
            for i, key in enumerate(keys)
            if producer._partition(tp.topic, None, key, b"v", key, b"v") == tp.partition
        ]
        assert [r.value for r in _records(batch._builder._build())] == expected
        batch.done(base_offset=100 * tp.partition)
    await asyncio.sleep(0)
    assert sorted(argument for argument, *_ in told) == sorted([*range(12), *range(12)])


async def test_a_run_leaves_to_send_what_a_full_batch_or_a_refusing_producer_cannot_take() -> None:
    producer = producer_knowing({"t": 1}, max_batch_size=1_000, max_request_size=1_500)
    batches = open_batches(producer)
    assert batches is not None
    while batches.append("t", b"k", b"v" * 100, None, telling([]), None):
        pass  # until the partition's batch is full: `send` then waits for a drain
    assert len(producer._message_accumulator._batches[TopicPartition("t", 0)]) == 1
    with pytest.raises(MessageSizeTooLargeError):
        open_batches(producer_knowing({"t": 1}, max_request_size=1_000)).append(  # type: ignore[union-attr]
            "t", b"k", b"v" * 2_000, None, telling([]), None
        )
    producer._message_accumulator._exception = KafkaTimeoutError()
    assert open_batches(producer) is None
