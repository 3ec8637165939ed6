"""What the work kinds (`task`, `http`) share: an attempt is a task request to an executor,
and its result comes back as `NodeCompleted` or `NodeFailed`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from braidflow.engine import ids
from braidflow.engine.messages import NodeCompleted, NodeError, NodeFailed, TaskRequest
from braidflow.engine.nodes.base import Handler, NodeKind, normal_edges, not_owned, timeout_timer
from braidflow.engine.state import (
    NodeRun,
    NodeStatus,
)
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft

# Statuses bound once: on Python 3.11 a lookup on an Enum class goes through
# EnumType.__getattr__, about 3x a global's cost, and these are read on every step.
_NODE_COMPLETED = NodeStatus.COMPLETED
_NODE_RUNNING = NodeStatus.RUNNING


def _attempt_running(draft: Draft, t: NodeCompleted | NodeFailed) -> NodeRun | None:
    """The node's run when `t` is the result of its attempt running now (not an item's)."""
    run = draft.nodes.get(t.node_id)
    if t.item is not None or run is None or run.status != _NODE_RUNNING or run.attempt != t.attempt:
        return None
    return run


class WorkKind(NodeKind):
    attempts = True
    patchable = True
    dispatched_at_once = True

    def owned(self) -> Mapping[type, Handler]:
        return {NodeCompleted: self.completed, NodeFailed: self.failed}

    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        """The resolved input an executor receives, rendered in `scope`."""
        raise NotImplementedError

    def output_problem(self, node: CompiledNode, output: Any) -> NodeError | None:
        """Why a completed attempt's output cannot stand, failing the attempt; None when it can."""
        return None

    def edges_taken(self, node: CompiledNode, output: Any) -> set[int]:
        """The edges a completed attempt goes on along: all but timeout and on_error edges."""
        return normal_edges(node)

    def handler(self, node: CompiledNode) -> str | None:
        """The task handler an executor runs; None for a kind the executor knows by its type."""
        return None

    def task_request(
        self,
        draft: Draft,
        node: CompiledNode,
        attempt: int,
        key: str,
        given: Any,
        item: int | None = None,
    ) -> TaskRequest:
        state = draft.state
        node_id = node.id
        # Positional, in the fields' order: matching 14 keywords made the call 2.5 times as long.
        return TaskRequest(
            state.execution_id,
            state.workflow_id,
            node_id,
            node.type,
            attempt,
            key,
            draft.at,  # at
            given,  # input
            self.handler(node),
            node.node.timeout_ms,
            item,
            state.tenant,
            draft.workflow.definition.department,
            draft.node_traceparent(node_id, attempt),
        )

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        """Send an attempt to an executor; `given` is its input (None: render it)."""
        if given is None:
            try:
                given = self.request_input(draft, node, draft.scope())
            except ExpressionError as exc:
                draft.failed_to_start(node, attempt, exc)
                return
        execution_id = draft.state.execution_id
        previous = draft.nodes.get(node.id)
        draft.nodes[node.id] = NodeRun(
            node.id,
            _NODE_RUNNING,
            attempt,
            given,
            None,
            previous.error if previous is not None else None,
            draft.at,
            None,
            previous.errors if previous is not None else (),
        )
        draft.emit_event("node.started", node_id=node.id, attempt=attempt, data=given)
        if node.node.timeout_ms is not None:
            draft.timers[timeout_timer(node.id, attempt)] = draft.at + node.node.timeout_ms
        key = ids.task_key(execution_id, node.id, attempt)
        draft.outgoing.append(self.task_request(draft, node, attempt, key, given))

    def completed(self, draft: Draft, node: CompiledNode, t: NodeCompleted) -> str | None:
        run = _attempt_running(draft, t)
        if run is None:
            return not_owned(t)
        problem = self.output_problem(node, t.output)
        if problem is not None:
            draft.attempt_failed(node, run, problem)
            return None
        if draft.timers:
            draft.timers.pop(timeout_timer(t.node_id, t.attempt), None)
        draft.nodes[t.node_id] = NodeRun(
            t.node_id,
            _NODE_COMPLETED,
            run.attempt,
            run.input,
            t.output,
            None,
            run.started_at,
            t.at,
            run.errors,
        )
        draft.emit_event(
            "node.completed",
            node_id=t.node_id,
            attempt=t.attempt,
            data=t.output,
            started_at=run.started_at,
        )
        if draft.over_budget(t.node_id, t.output):
            return None
        draft.go_on(node, self.edges_taken(node, t.output))
        return None

    def failed(self, draft: Draft, node: CompiledNode, t: NodeFailed) -> str | None:
        run = _attempt_running(draft, t)
        if run is None:
            return not_owned(t)
        draft.attempt_failed(node, run, replace(t.error, node_id=t.node_id))
        return None


class CustomWork(WorkKind):
    """A work kind another package added (docs/custom-kinds.md): the executor gets every
    param, the templated ones rendered, and runs the package's handler with them.

    Here, in a compiled module, since a class of its own could not extend a compiled
    `WorkKind` when run as Python."""

    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        return {name: draft.render(node, name, scope=scope) for name in node.node.params}
