"""Drive the engine in-process with no Kafka: work, waits and approvals are answered from a table.

This is `braidflow dry-run`: a preview of the path an input takes. Records are
delivered in the order they were emitted, one at a time, as the single
partition of an execution would deliver them. Every item of a foreach gets
the answer under the foreach's node id.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from braidflow.engine import ids
from braidflow.engine.messages import (
    ApprovalDecided,
    AwaitEvent,
    ChildFinished,
    CollectItems,
    DropItems,
    EventArrived,
    ItemError,
    ItemsChunk,
    ItemsCollected,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    StartExecution,
    TaskRequest,
    TimerFired,
    Transition,
)
from braidflow.engine.nodes import NODE_KINDS
from braidflow.engine.state import ExecutionState, ExecutionStatus
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
            ids.task_failed_id(key),
            request.execution_id,
            at,
            request.node_id,
            request.attempt,
            given.error,
            request.item,
        )
    return NodeCompleted(
        ids.task_completed_id(key),
        request.execution_id,
        at,
        request.node_id,
        request.attempt,
        given.output,
        request.item,
    )


def arrival(wait: AwaitEvent, answers: Mapping[str, Answer], at: int) -> EventArrived | None:
    """The event answered for a wait_event; None leaves it waiting (for its timeout, if any)."""
    given = answers.get(wait.node_id)
    if given is None or given.output is None:
        return None
    event = given.output if isinstance(given.output, Mapping) else {"data": given.output}
    return EventArrived(ids.arrived_id(wait.id), wait.execution_id, at, wait.node_id, event)


def decision(
    asked: LifecycleEvent, answers: Mapping[str, Answer], at: int
) -> ApprovalDecided | None:
    """The decision answered for an approval: `{choice, by, comment, data}` or just the choice.

    None leaves the approval waiting, for its timeout if it has one.
    """
    assert asked.node_id is not None
    given = answers.get(asked.node_id)
    if given is None or given.output is None:
        return None
    reply = given.output if isinstance(given.output, Mapping) else {"choice": given.output}
    return ApprovalDecided(
        ids.decided_id(asked.execution_id, asked.node_id, asked.attempt),
        asked.execution_id,
        at,
        asked.node_id,
        "dry-run",
        str(reply.get("choice")),
        str(reply.get("by", "dry-run")),
        reply.get("comment"),
        reply.get("data"),
    )


def child_result(start: StartExecution, answers: Mapping[str, Answer], at: int) -> ChildFinished:
    """A child execution ends as answered under the node that started it (a subworkflow,
    a foreach item, a loop pass): the output, or the error."""
    assert start.parent is not None
    given = answers.get(start.parent.node_id, Answer())
    status = ExecutionStatus.FAILED if given.error is not None else ExecutionStatus.COMPLETED
    return ChildFinished(
        ids.finished_id(start.execution_id),
        start.parent.execution_id,
        at,
        start.parent.node_id,
        start.execution_id,
        status,
        given.output,
        given.error,
        start.parent.item,
    )


def collected_items(
    request: CollectItems, chunks: Mapping[int, ItemsChunk], at: int
) -> ItemsCollected:
    """What the runtime answers a foreach collecting its items: the chunks put together in order.

    A missing chunk is left out; the engine notices the shortfall.
    """
    results: list[Any] = []
    errors: list[ItemError] = []
    for index in range(request.chunks):
        chunk = chunks.get(index)
        if chunk is not None:
            results.extend(chunk.results)
            errors.extend(chunk.errors)
    return ItemsCollected(
        ids.collected_id(request.id),
        request.execution_id,
        at,
        request.node_id,
        request.attempt,
        tuple(results),
        tuple(errors),
    )


def due_timer(state: ExecutionState | None) -> TimerFired | None:
    """The pending timer that comes due first, fired at its due time."""
    if state is None or not state.timers:
        return None
    timer_id, due = min(state.timers.items(), key=lambda item: (item[1], item[0]))
    execution_id = state.execution_id
    return TimerFired(ids.timer_fired_id(execution_id, timer_id, due), execution_id, due, timer_id)


def completed_nodes(result: StepResult) -> list[str]:
    """The nodes a step completed, as its lifecycle events say: a dry run's path, in order."""
    return [
        o.node_id
        for o in result.outgoing
        if isinstance(o, LifecycleEvent) and o.type == "node.completed" and o.node_id
    ]


def dry_run(
    workflow: Workflow,
    input_: Any,
    answers: Mapping[str, Answer],
    *,
    execution_id: str = "dry-run",
    started_at: int = 0,
    dept: Mapping[str, Any] | None = None,
) -> Iterator[tuple[Transition, StepResult]]:
    """Yield each transition applied and its result, until nothing is left to deliver.

    Everything answered happens at once (a millisecond per record); when
    nothing else is left, the earliest pending timer fires at its due time.
    Child executions do not run: a subworkflow gets the answer under its node id,
    and so does every item of a foreach over a workflow and every pass of a loop.
    `dept` is the department's shared context, read as `dept.*`.
    """
    queue: deque[Transition] = deque(
        [StartExecution("start", execution_id, started_at, workflow.id, 1, input_, dept=dept)]
    )
    state: ExecutionState | None = None
    # The foreach chunks the runtime would keep, by (node, attempt) and chunk.
    stored: dict[tuple[str, int], dict[int, ItemsChunk]] = {}
    clock = started_at
    while True:
        if not queue:
            fired = due_timer(state)
            if fired is None:
                return
            clock = max(clock, fired.at)
            queue.append(fired)
        transition = queue.popleft()
        result = step(workflow, state, transition)
        state = result.state
        yield transition, result
        for message in result.outgoing:
            reply = _reply(workflow, state, message, answers, stored, clock + 1)
            if reply is not None:
                clock += reply is not message
                queue.append(reply)


def _reply(
    workflow: Workflow,
    state: ExecutionState | None,
    message: Outgoing,
    answers: Mapping[str, Answer],
    stored: dict[tuple[str, int], dict[int, ItemsChunk]],
    at: int,
) -> Transition | None:
    """What comes back to this execution for one record it sent, if anything."""
    if isinstance(message, ItemsChunk):
        stored.setdefault((message.node_id, message.attempt), {})[message.chunk] = message
        return None
    if isinstance(message, DropItems):
        stored.pop((message.node_id, message.attempt), None)
        return None
    if isinstance(message, CollectItems):
        return collected_items(message, stored.get((message.node_id, message.attempt), {}), at)
    if isinstance(message, TaskRequest):
        return answer(message, answers, at)
    if isinstance(message, AwaitEvent):
        return arrival(message, answers, at)
    if isinstance(message, LifecycleEvent):
        # A node that waits for a decision (its kind owns ApprovalDecided) is answered.
        asked = (
            message.type == "node.started"
            and message.node_id is not None
            and ApprovalDecided in NODE_KINDS[workflow.nodes[message.node_id].type].transitions
        )
        return decision(message, answers, at) if asked else None
    if isinstance(message, StartExecution) and message.parent is not None:
        waited = state is not None and message.execution_id in state.children.values()
        return child_result(message, answers, at) if waited else None
    if isinstance(message, Transition) and state is not None:
        # Records for other executions (cancelling a child) have no one to go to here.
        return message if message.execution_id == state.execution_id else None
    return None
