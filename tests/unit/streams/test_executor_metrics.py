"""Every task an executor runs counts in `braidflow_tasks_run_total` by kind and outcome, and
its time in `braidflow_task_duration_seconds` by kind, each run once, however many ran before."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from braidflow.config import Settings
from braidflow.engine import NodeCompleted, NodeFailed, Transition
from braidflow.engine.messages import TaskRequest
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.executor import Executor
from braidflow.tasks import TaskRegistry

registry = TaskRegistry()


@registry.task("counted.fine")
async def fine(input: Any) -> dict[str, Any]:
    return {}


@registry.task("counted.not_json")
async def not_json(input: Any) -> set[int]:
    return {1}


class NoHttp:
    async def call(self, *args: Any) -> dict[str, Any]:
        raise AssertionError("no http node here")


def runs(kind: str, outcome: str) -> float:
    labels = {"kind": kind, "outcome": outcome}
    return REGISTRY.get_sample_value("braidflow_tasks_run_total", labels) or 0.0


def timed(kind: str) -> float:
    return REGISTRY.get_sample_value("braidflow_task_duration_seconds_count", {"kind": kind}) or 0.0


def request(n: int, kind: str, handler: str | None) -> TaskRequest:
    return TaskRequest("ex", "wf", f"n{n}", kind, 1, f"ex:n{n}:1", 1, {}, handler)


async def test_each_task_run_counts_once_by_kind_and_outcome() -> None:
    delivered: list[Transition] = []

    async def send(
        transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        delivered.append(transition)

    async def dead_letter(letter: DeadLetter) -> None:
        raise AssertionError(letter)

    executor = Executor(Settings(), registry, NoHttp(), send, dead_letter, lambda: 1)
    shapes = [("task", "counted.fine")] * 3 + [("task", "counted.not_json"), ("mystery", None)]
    before = {
        "task completed": runs("task", "completed"),
        "task failed": runs("task", "failed"),
        "unknown failed": runs("unknown", "failed"),
        "task timed": timed("task"),
        "unknown timed": timed("unknown"),
    }
    for n, (kind, handler) in enumerate(shapes):
        await executor._run_and_deliver(request(n, kind, handler))

    assert [type(t) for t in delivered] == [NodeCompleted] * 3 + [NodeFailed] * 2
    assert [t.error.type for t in delivered if isinstance(t, NodeFailed)] == [
        "InvalidOutput",
        "UnknownKind",
    ]
    assert {
        "task completed": runs("task", "completed") - before["task completed"],
        "task failed": runs("task", "failed") - before["task failed"],
        "unknown failed": runs("unknown", "failed") - before["unknown failed"],
        "task timed": timed("task") - before["task timed"],
        "unknown timed": timed("unknown") - before["unknown timed"],
    } == {
        "task completed": 3,
        "task failed": 1,
        "unknown failed": 1,
        "task timed": 4,
        "unknown timed": 1,
    }
