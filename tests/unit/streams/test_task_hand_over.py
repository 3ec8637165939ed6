"""A task request the worker's own orchestrator sends runs at once in its executor, when that
executor owns the request's tasks partition; read back from the topic, it does not run again,
and counts as done once the run's result is delivered."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from braidflow.config import Settings
from braidflow.engine import Transition
from braidflow.engine.messages import TaskRequest
from braidflow.schemas import decode_transition, encode_task
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.executor import Executor
from braidflow.tasks import TaskRegistry

SETTINGS = Settings(partitions=4)
TASKS = SETTINGS.topics.tasks
registry = TaskRegistry()
runs: list[str] = []
# Where the producer puts key b"ex" among 4 partitions (murmur2).
PARTITION = 3


@registry.task("counted")
async def counted(input: Any) -> dict[str, Any]:
    runs.append(input["n"])
    return {}


class Assigned:
    """The executor's consumer as `run_here` asks it: the tasks topic's partitions, and
    those assigned to this executor."""

    def __init__(self, assigned: set[int]) -> None:
        self.assigned = assigned

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(SETTINGS.partitions)) if topic == TASKS else set()

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TASKS, p) for p in self.assigned}


class NoHttp:
    async def call(self, *args: Any) -> dict[str, Any]:
        raise AssertionError("no http node here")


def executor(assigned: set[int], delivered: list[Transition]) -> Executor:
    async def send(
        transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        delivered.append(transition)

    async def dead_letter(letter: DeadLetter) -> None:
        raise AssertionError(letter)

    run = Executor(SETTINGS, registry, NoHttp(), send, dead_letter, lambda: 1)
    run._consumer = Assigned(assigned)  # type: ignore[assignment]
    return run


def task(n: str, handler: str = "counted") -> bytes:
    return encode_task(TaskRequest("ex", "wf", n, "task", 1, f"ex:{n}:1", 1, {"n": n}, handler))


def read_back(value: bytes, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TASKS, PARTITION, offset, 1, 0, b"ex", value, None, 2, len(value), ())


async def settled() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_request_handed_over_runs_once_and_is_done_when_read_back() -> None:
    runs.clear()
    delivered: list[Transition] = []
    run = executor({0, 1, 2, 3}, delivered)
    value = task("a")
    assert run.run_here(b"ex", value)
    # Sent again (an outbox resend) before or after it ran: not run twice.
    assert run.run_here(b"ex", value)
    await settled()
    assert runs == ["a"] and [t.id for t in delivered] == ["ex:a:1/completed"]
    run._take(read_back(value, 7))
    await settled()
    assert runs == ["a"]
    tp = TopicPartition(TASKS, PARTITION)
    assert run._commits._tracker.to_commit() == {tp: 8}


async def test_a_record_read_back_while_its_run_is_under_way_is_done_only_after_it() -> None:
    runs.clear()
    gate = asyncio.Event()

    async def slow_send(
        transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        await gate.wait()

    run = executor({0, 1, 2, 3}, [])
    run._send = slow_send
    value = task("b")
    assert run.run_here(b"ex", value)
    await settled()
    run._take(read_back(value, 3))
    await settled()
    tp = TopicPartition(TASKS, PARTITION)
    # Its result not delivered: a crash now must leave the record to be read again.
    assert run._commits._tracker.to_commit() == {tp: 3}
    gate.set()
    await settled()
    assert run._commits._tracker.to_commit() == {tp: 4}
    assert runs == ["b"]


async def test_requests_of_another_workers_partition_or_handler_are_left_to_the_topic() -> None:
    runs.clear()
    elsewhere = executor({0, 1, 2}, [])
    assert not elsewhere.run_here(b"ex", task("c"))
    here = executor({0, 1, 2, 3}, [])
    assert not here.run_here(b"ex", task("d", handler="not.here"))
    await settled()
    assert runs == []


async def test_a_result_is_sent_with_the_encoding_its_size_was_checked_on() -> None:
    sent: list[tuple[Transition, bytes | None]] = []

    async def send(
        transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        sent.append((transition, value))

    run = executor({0, 1, 2, 3}, [])
    run._send = send
    assert run.run_here(b"ex", task("g"))
    await settled()
    [(result, value)] = sent
    assert value is not None and decode_transition(value) == result


async def test_with_every_slot_taken_a_request_is_left_to_the_topic_and_runs_once() -> None:
    runs.clear()
    gate = asyncio.Event()

    async def held_send(
        transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        await gate.wait()

    run = executor({0, 1, 2, 3}, [])
    run._settings = Settings(partitions=4, task_concurrency=1)
    run._send = held_send
    first, second = task("h"), task("i")
    assert run.run_here(b"ex", first)
    await settled()
    # The one slot is taken until "h"'s result is delivered.
    assert not run.run_here(b"ex", second)
    assert not run.run_here(b"ex", first)
    run._take(read_back(first, 5))
    await settled()
    assert runs == ["h"]
    gate.set()
    await settled()
    run._take(read_back(second, 6))
    await settled()
    assert runs == ["h", "i"]
    tp = TopicPartition(TASKS, PARTITION)
    assert run._commits._tracker.to_commit() == {tp: 7}
