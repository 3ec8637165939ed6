"""An executor runs the work kinds it is given beside `task` and `http`, each counted under its
own name; a kind it was not given fails the node, naming those it runs."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from braidflow.config import Settings
from braidflow.engine import NodeCompleted, NodeFailed, Transition
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.secrets import SecretScope
from braidflow.streams.executor import Executor
from braidflow.tasks import NodeFailure, TaskRegistry


class NoHttp:
    async def call(self, *args: Any) -> dict[str, Any]:
        raise AssertionError("no http node here")


async def shout(request: TaskRequest, secrets: SecretScope, node_log: NodeLog) -> Any:
    if request.input == "":
        raise NodeFailure("NothingToShout", "the input is empty")
    return {"text": str(request.input).upper()}


def request(n: int, kind: str, input_: Any) -> TaskRequest:
    return TaskRequest("ex", "wf", f"n{n}", kind, 1, f"ex:n{n}:1", 1, input_, None)


def completed(kind: str) -> float:
    labels = {"kind": kind, "outcome": "completed"}
    return REGISTRY.get_sample_value("braidflow_tasks_run_total", labels) or 0.0


async def test_a_kind_given_runs_and_counts_under_its_name() -> None:
    delivered: list[Transition] = []

    async def send(
        transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        delivered.append(transition)

    async def dead_letter(letter: DeadLetter) -> None:
        raise AssertionError(letter)

    executor = Executor(
        Settings(), TaskRegistry(), NoHttp(), send, dead_letter, lambda: 1, kinds={"shout": shout}
    )
    before = completed("shout")
    for n, (kind, input_) in enumerate([("shout", "hi"), ("shout", ""), ("whisper", "hi")]):
        await executor._run_and_deliver(request(n, kind, input_))

    first, empty, unknown = delivered
    assert isinstance(first, NodeCompleted) and first.output == {"text": "HI"}
    assert isinstance(empty, NodeFailed)
    assert (empty.error.type, empty.error.message) == ("NothingToShout", "the input is empty")
    assert isinstance(unknown, NodeFailed) and unknown.error.type == "UnknownKind"
    assert (
        unknown.error.message
        == "this worker's executors run http, shout, task nodes, not 'whisper'"
    )
    assert completed("shout") - before == 1
