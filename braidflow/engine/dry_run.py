"""Drive the engine in-process with no Kafka: work nodes and waits are answered from a table.

This is `braidflow dry-run`: a preview of the path an input takes. Records are
delivered in the order they were emitted, one at a time, as the single
partition of an execution would deliver them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from braidflow.engine.messages import (
    AwaitEvent,
    EventArrived,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    PublishEvent,
    StartExecution,
    TaskRequest,
    TimerFired,
    Transition,
)
from braidflow.engine.state import ExecutionState
from braidflow.engine.step import StepResult, step
from braidflow.topology.workflow import Workflow


@dataclass(frozen=True, slots=True)
class Answer:
    """What a work node returns in a dry run: an output, or an error."""

    output: Any = None
    error: NodeError | None = None


def parse_answers(raw: Any) -> dict[str, Answer]:
    """Answers from plain data: `{node: output}` or `{node: {error: "message"}}`.

    An entry `{error: ..., type: ...}` with only those keys is an error; to answer
    with an output that has an `error` key, wrap it: `{output: {...}}`.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("answers must be a mapping of node id to output")
    answers = {}
    for node_id, value in raw.items():
        if isinstance(value, Mapping) and set(value) <= {"error", "type"} and "error" in value:
            answers[str(node_id)] = Answer(
                error=NodeError(str(value.get("type", "Error")), str(value["error"]))
            )
        elif isinstance(value, Mapping) and set(value) == {"output"}:
            answers[str(node_id)] = Answer(output=value["output"])
        else:
            answers[str(node_id)] = Answer(output=value)
    return answers


def answer(request: TaskRequest, answers: Mapping[str, Answer], at: int) -> Transition:
    """The transition an executor would send back for `request`."""
    given = answers.get(request.node_id, Answer())
    key = request.idempotency_key
    if given.error is not None:
        return NodeFailed(
            f"{key}/failed", request.execution_id, at, request.node_id, request.attempt, given.error
        )
    return NodeCompleted(
        f"{key}/completed", request.execution_id, at, request.node_id, request.attempt, given.output
    )


def arrival(wait: AwaitEvent, answers: Mapping[str, Answer], at: int) -> Transition | None:
    """What a wait_event gets: the answered event, else its timeout (None: it waits forever)."""
    given = answers.get(wait.node_id)
    if given is not None and given.output is not None:
        event = given.output if isinstance(given.output, Mapping) else {"data": given.output}
        return EventArrived(f"{wait.id}/arrived", wait.execution_id, at, wait.node_id, event)
    if wait.expires_at is not None:
        timer = f"{wait.node_id}/1/timeout"
        return TimerFired(f"{wait.id}/timeout", wait.execution_id, wait.expires_at, timer)
    return None


def dry_run(
    workflow: Workflow,
    input_: Any,
    answers: Mapping[str, Answer],
    *,
    execution_id: str = "dry-run",
    started_at: int = 0,
) -> Iterator[tuple[Transition, StepResult]]:
    """Yield each transition applied and its result, until nothing is left to deliver."""
    queue: deque[Transition] = deque(
        [StartExecution("start", execution_id, started_at, workflow.id, 1, input_)]
    )
    state: ExecutionState | None = None
    clock = started_at
    while queue:
        transition = queue.popleft()
        result = step(workflow, state, transition)
        state = result.state
        yield transition, result
        for message in result.outgoing:
            if isinstance(message, TaskRequest):
                clock += 1
                queue.append(answer(message, answers, clock))
            elif isinstance(message, AwaitEvent):
                clock += 1
                arrived = arrival(message, answers, clock)
                if arrived is not None:
                    queue.append(arrived)
            elif not isinstance(message, LifecycleEvent | PublishEvent):
                queue.append(message)
