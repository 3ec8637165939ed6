"""A consumer's commits: never past a record still running, on revoke, at stop, again after a
refusal. The consumer is plain data: it records what it is asked to commit."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import RebalanceInProgressError

from braidflow.streams.committing import Commits

TASKS_0 = TopicPartition("tasks", 0)
TASKS_1 = TopicPartition("tasks", 1)


class RecordedConsumer:
    """Keeps each commit it takes; refuses the next `refusals` as a rebalance would."""

    def __init__(self, refusals: int = 0) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.refusals = refusals
        self.listener: ConsumerRebalanceListener | None = None

    def subscribe(self, topics: Collection[str], *, listener: ConsumerRebalanceListener) -> None:
        self.listener = listener

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.refusals:
            self.refusals -= 1
            raise RebalanceInProgressError()
        self.commits.append(dict(offsets))


def record(partition: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        partition.topic, partition.partition, offset, 0, 0, b"k", b"v", None, 1, 1, []
    )


def following(consumer: RecordedConsumer, interval_s: float = 3600.0) -> Commits:
    commits = Commits("bf-executors", interval_s)
    commits.follow(consumer, ["tasks"])
    return commits


async def test_a_partition_is_committed_up_to_its_first_record_not_finished() -> None:
    consumer = RecordedConsumer()
    commits = following(consumer)
    running = [commits.started(record(TASKS_0, offset)) for offset in (10, 11, 12)]
    running[1].finish(11)
    running[2].finish(12)
    await commits.commit()
    running[0].finish(10)
    await commits.commit()
    await commits.commit()  # nothing moved: nothing sent
    assert consumer.commits == [{TASKS_0: 10}, {TASKS_0: 13}]
    await commits.stop()


async def test_a_refused_commit_is_logged_and_made_at_the_next_round(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = RecordedConsumer(refusals=1)
    commits = following(consumer)
    commits.started(record(TASKS_0, 4)).finish(4)
    await commits.commit()
    assert consumer.commits == []
    assert "group bf-executors: commit of" in caplog.text
    await commits.commit()
    assert consumer.commits == [{TASKS_0: 5}]
    await commits.stop()


async def test_a_revoked_partition_is_committed_then_forgotten() -> None:
    consumer = RecordedConsumer()
    commits = following(consumer)
    kept = commits.started(record(TASKS_0, 0))
    kept.finish(0)
    revoked = commits.started(record(TASKS_1, 7))
    commits.started(record(TASKS_1, 8)).finish(8)
    assert consumer.listener is not None
    await consumer.listener.on_partitions_revoked([TASKS_1])
    # Finishing after the revoke counts for nothing: the partition's next owner reads it again.
    revoked.finish(7)
    await commits.commit()
    assert consumer.commits == [{TASKS_1: 7}, {TASKS_0: 1}]
    await commits.stop()


async def test_stop_commits_what_finished_and_nothing_after() -> None:
    consumer = RecordedConsumer()
    commits = following(consumer)
    commits.started(record(TASKS_0, 2)).finish(2)
    await commits.stop()
    commits.started(record(TASKS_0, 3)).finish(3)
    await commits.commit()
    assert consumer.commits == [{TASKS_0: 3}]


async def test_finished_records_are_committed_every_interval() -> None:
    consumer = RecordedConsumer()
    commits = following(consumer, interval_s=0.01)
    commits.started(record(TASKS_0, 0)).finish(0)
    async with asyncio.timeout(10):
        while not consumer.commits:
            await asyncio.sleep(0.01)
    assert consumer.commits[0] == {TASKS_0: 1}
    await commits.stop()
