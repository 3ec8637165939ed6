"""The transitions reader on the real broker: it starts at the group's committed offsets, hands
each record over with the record's partition as Faust's current event (where a table write
goes), never skips a record whose step failed, and commits through the group only after the
producer is flushed. The group member stands in for Faust's consumer, the app around it is
plain data; the broker, topics and offsets are real."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from faust.streams import current_event

from braidflow.config import Settings
from braidflow.streams.orchestrator import Record
from braidflow.streams.transitions_reader import TransitionsReader
from tests.integration.suite_broker import SuiteBroker

DEADLINE_S = 30.0


@dataclass
class GroupMember:
    """Faust's aiokafka consumer, as the reader uses it; notes each commit in `log`."""

    consumer: AIOKafkaConsumer
    log: list[str]

    def assignment(self) -> set[TopicPartition]:
        return self.consumer.assignment()

    async def committed(self, tp: TopicPartition) -> int | None:
        return await self.consumer.committed(tp)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append("commit")
        await self.consumer.commit(offsets)


@dataclass
class Producer:
    """Faust's producer, as the reader uses it: notes each flush in `log`."""

    log: list[str]

    async def flush(self) -> None:
        self.log.append("flush")


@dataclass
class Steps:
    """The orchestrator's part: notes each record handed over, the offsets handed over
    together, and the partition its table writes would go to; fails the first try of the
    offsets in `failing` (and the records handed over with them)."""

    failing: set[tuple[int, int]] = field(default_factory=set)
    tried: list[tuple[int, int]] = field(default_factory=list)
    handled: list[tuple[int, int, bytes | None]] = field(default_factory=list)
    together: list[list[tuple[int, bytes | None]]] = field(default_factory=list)
    written_to: list[int] = field(default_factory=list)

    async def handle(self, records: Sequence[Record]) -> None:
        self.tried.extend((record.partition, record.offset) for record in records)
        failing = self.failing & {(record.partition, record.offset) for record in records}
        if failing:
            self.failing -= failing
            raise RuntimeError("the store failed")
        event = current_event()
        assert event is not None
        self.together.append([(record.offset, record.key) for record in records])
        for record in records:
            self.written_to.append(event.message.partition)
            self.handled.append((record.partition, record.offset, record.value))


async def _ready() -> None:
    return None


async def _until(check: Any) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while not check():
            await asyncio.sleep(0.05)


async def _scenario(
    broker: SuiteBroker,
    prefix: str,
    steps: Steps,
    first: int,
    stale: bool = False,
    keys: tuple[bytes, bytes, bytes] = (b"k", b"k", b"k"),
) -> list[str]:
    """Two partitions of three records each (`keys`, in order), partition 0 committed up to
    `first`; reads them, releases; the group's committed offsets are checked. Returns the
    flushes and commits. `stale`: first a revocation, then the end of the recovery before it,
    which is not read."""
    topic = f"{prefix}.transitions"
    admin = AIOKafkaAdminClient(**broker.aiokafka())
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    producer = AIOKafkaProducer(**broker.aiokafka())
    await producer.start()
    for partition in (0, 1):
        for n, key in enumerate(keys):
            await producer.send_and_wait(topic, f"{partition}-{n}".encode(), key, partition)
    await producer.stop()
    log: list[str] = []
    member = AIOKafkaConsumer(**broker.aiokafka(), group_id=prefix, enable_auto_commit=False)
    await member.start()
    held = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    member.assign(held)
    await member.commit({held[0]: OffsetAndMetadata(first, "")})
    app = SimpleNamespace(
        consumer=SimpleNamespace(_thread=SimpleNamespace(_consumer=GroupMember(member, log))),
        producer=Producer(log),
    )
    settings = Settings(kafka=broker.connection, prefix=prefix, fetch_max_wait_ms=50)
    reader = TransitionsReader(app, settings, steps.handle, _ready)  # type: ignore[arg-type]
    try:
        if stale:
            await reader.release(revoking=True)
            await reader.assign()
            assert reader.reading == frozenset()
            reader.assigned()
        await reader.assign()
        assert reader.reading == frozenset(held)
        await _until(lambda: len(steps.handled) == 6 - first)
        await reader.release()
        assert await member.committed(held[0]) == 3
        assert await member.committed(held[1]) == 3
    finally:
        await reader.release()
        await member.stop()
    return log


async def test_reads_from_the_committed_offsets_and_commits_once_flushed(
    broker: SuiteBroker, prefix: str
) -> None:
    steps = Steps()
    log = await _scenario(broker, prefix, steps, first=1)
    assert sorted(steps.handled) == [
        (0, 1, b"0-1"),
        (0, 2, b"0-2"),
        (1, 0, b"1-0"),
        (1, 1, b"1-1"),
        (1, 2, b"1-2"),
    ]
    # Each record's table writes go to its own partition (its changelog partition).
    assert steps.written_to == [partition for partition, _, _ in steps.handled]
    assert log[-2:] == ["flush", "commit"]
    assert log.index("flush") < log.index("commit")


async def test_a_record_whose_step_failed_is_handled_again_in_order(
    broker: SuiteBroker, prefix: str
) -> None:
    steps = Steps(failing={(0, 1)})
    await _scenario(broker, prefix, steps, first=0)
    on_0 = [offset for partition, offset in steps.tried if partition == 0]
    assert on_0.count(1) == 2
    assert on_0.index(1) < on_0.index(2)
    assert [offset for partition, offset, _ in steps.handled if partition == 0] == [0, 1, 2]


async def test_an_executions_records_fetched_together_are_handed_over_together(
    broker: SuiteBroker, prefix: str
) -> None:
    steps = Steps()
    await _scenario(broker, prefix, steps, first=0, keys=(b"x", b"y", b"x"))
    # Each partition's three records come in one fetch: x's two in order, then y's.
    assert steps.together == [[(0, b"x"), (2, b"x")], [(1, b"y")]] * 2


async def test_a_recovery_ended_after_a_revocation_is_not_read_from(
    broker: SuiteBroker, prefix: str
) -> None:
    steps = Steps()
    await _scenario(broker, prefix, steps, first=0, stale=True)
    assert sorted(steps.handled)[0] == (0, 0, b"0-0")
