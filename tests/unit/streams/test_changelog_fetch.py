"""A worker's aiokafka consumer fetches a table's changelog only while Faust reads it (a
recovery); the agents' topics are fetched as before. Faust's own pause and resume, patched,
are driven with plain objects standing in for its consumer, its thread and aiokafka's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from faust.transport.consumer import Consumer

from braidflow.config import Settings
from braidflow.streams.changelog_fetch import patch_changelog_fetch
from braidflow.streams.transitions_reader import TransitionsReader, patch_transitions_apart

CHANGELOG = "braidflow-executions-changelog"
TRANSITIONS = "braidflow.transitions"
ASSIGNED = frozenset(
    TopicPartition(topic, partition) for topic in (CHANGELOG, TRANSITIONS) for partition in (0, 1)
)


@dataclass
class AiokafkaConsumer:
    """What the patch asks of aiokafka's consumer: its assignment and its pauses."""

    assigned: set[TopicPartition] = field(default_factory=lambda: set(ASSIGNED))
    paused_now: set[TopicPartition] = field(default_factory=set)

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_now)

    def pause(self, *tps: TopicPartition) -> None:
        assert set(tps) <= self.assigned, "aiokafka refuses a partition not assigned"
        self.paused_now.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        assert set(tps) <= self.assigned, "aiokafka refuses a partition not assigned"
        self.paused_now.difference_update(tps)


@dataclass
class ThreadLoop:
    """The consumer thread's loop: runs what it is handed at once, in order."""

    closed: bool = False

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        assert not self.closed, "a closed loop refuses a callback"
        callback()

    def is_closed(self) -> bool:
        return self.closed


@dataclass
class ConsumerThread:
    _consumer: AiokafkaConsumer
    thread_loop: ThreadLoop = field(default_factory=ThreadLoop)


@dataclass
class Tables:
    changelog_topics: frozenset[str] = frozenset({CHANGELOG})


@dataclass
class App:
    tables: Tables = field(default_factory=Tables)


@dataclass
class FaustConsumer:
    """The part of Faust's consumer its pause and resume touch."""

    _thread: ConsumerThread
    app: App = field(default_factory=App)
    _paused_partitions: set[Any] = field(default_factory=set)
    _active_partitions: set[Any] = field(default_factory=lambda: set(ASSIGNED))

    def _get_active_partitions(self) -> set[Any]:
        return self._active_partitions

    def assignment(self) -> set[Any]:
        return set(ASSIGNED)


def faust_consumer() -> tuple[FaustConsumer, AiokafkaConsumer]:
    aiokafka = AiokafkaConsumer()
    return FaustConsumer(ConsumerThread(aiokafka)), aiokafka


def changelog(partitions: Iterable[int]) -> set[TopicPartition]:
    return {TopicPartition(CHANGELOG, p) for p in partitions}


def test_a_recovered_tables_changelog_is_no_longer_fetched() -> None:
    patch_changelog_fetch()
    consumer, aiokafka = faust_consumer()
    # What Faust does once the table is recovered: its changelog partitions are paused.
    Consumer.pause_partitions(consumer, changelog((0, 1)))  # type: ignore[arg-type]
    assert aiokafka.paused() == changelog((0, 1))


def test_the_agents_topics_are_left_to_faust() -> None:
    patch_changelog_fetch()
    consumer, aiokafka = faust_consumer()
    # Faust pauses every partition of a new assignment, then resumes the agents' topics.
    Consumer.pause_partitions(consumer, ASSIGNED)  # type: ignore[arg-type]
    Consumer.resume_partitions(  # type: ignore[arg-type]
        consumer, {tp for tp in ASSIGNED if tp.topic == TRANSITIONS}
    )
    assert aiokafka.paused() == changelog((0, 1))


def test_a_recovery_fetches_the_changelog_again_until_it_is_done() -> None:
    patch_changelog_fetch()
    consumer, aiokafka = faust_consumer()
    Consumer.pause_partitions(consumer, changelog((0, 1)))  # type: ignore[arg-type]
    Consumer.resume_partitions(consumer, changelog((1,)))  # type: ignore[arg-type]
    assert aiokafka.paused() == changelog((0,))
    Consumer.pause_partitions(consumer, changelog((1,)))  # type: ignore[arg-type]
    assert aiokafka.paused() == changelog((0, 1))


def test_a_partition_aiokafka_no_longer_holds_is_skipped() -> None:
    patch_changelog_fetch()
    consumer, aiokafka = faust_consumer()
    # A rebalance under way: aiokafka's assignment has moved on before Faust's.
    aiokafka.assigned -= changelog((1,))
    Consumer.pause_partitions(consumer, changelog((0, 1)))  # type: ignore[arg-type]
    assert aiokafka.paused() == changelog((0,))


def test_a_stopped_consumer_thread_is_left_alone() -> None:
    patch_changelog_fetch()
    consumer, aiokafka = faust_consumer()
    # A worker stopping: Faust pauses its assignment after its consumer thread has stopped.
    consumer._thread.thread_loop.closed = True
    Consumer.pause_partitions(consumer, ASSIGNED)  # type: ignore[arg-type]
    assert aiokafka.paused() == set()


async def _nothing(*_: Any) -> None:
    return None


def test_the_transitions_are_not_fetched_once_their_reader_reads_them() -> None:
    patch_changelog_fetch()
    patch_transitions_apart()
    consumer, aiokafka = faust_consumer()
    TransitionsReader(consumer.app, Settings(prefix="braidflow"), _nothing, _nothing)  # type: ignore[arg-type]
    # A new assignment paused, then the end of its recovery resumes all but the changelogs.
    Consumer.pause_partitions(consumer, ASSIGNED)  # type: ignore[arg-type]
    Consumer.resume_partitions(  # type: ignore[arg-type]
        consumer, {tp for tp in ASSIGNED if tp.topic == TRANSITIONS}
    )
    assert aiokafka.paused() == set(ASSIGNED)
