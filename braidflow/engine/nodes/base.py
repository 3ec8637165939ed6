"""The protocol every node kind implements, and the small pieces several kinds share.

A kind is one object (like a per-kind handle in a workflow runtime): `start`
begins an attempt, `timed_out` says what its timeout does, `timer_fired` handles
timers of its own, `transitions` maps each transition it owns to its handler,
and `patch_problem` says whether a redrive may replace its input. Everything
else (dispatch, propagation, joins, failure, finishing) is the engine's, in
`engine/step.py`, which calls the kinds through `braidflow.engine.nodes.NODE_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine import ids
from braidflow.engine.messages import (
    ApprovalDecided,
    ChildFinished,
    EventArrived,
    ItemsCollected,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Transition,
)
from braidflow.engine.state import (
    NodeRun,
    NodeStatus,
)
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.kinds import KindSpec
from braidflow.topology.workflow import CompiledEdge, CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft

Handler = Callable[["Draft", CompiledNode, Any], "str | None"]
"""Applies a transition addressed to one node of the kind: None, or why it was ignored."""

# Statuses bound once: on Python 3.11 a lookup on an Enum class goes through
# EnumType.__getattr__, about 3x a global's cost, and these are read on every step.
_NODE_COMPLETED = NodeStatus.COMPLETED
_NODE_RUNNING = NodeStatus.RUNNING


def timeout_timer(node_id: str, attempt: int) -> str:
    return ids.node_timer(node_id, attempt, "timeout")


def normal_edges(node: CompiledNode) -> set[int]:
    """The edges a node that completed normally takes (all but timeout and on_error edges)."""
    return {e.index for e in node.outgoing if not e.timeout and not e.on_error}


def json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words: `null`, `an array`, `a string`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, dict) else "an array"


def child_error(t: ChildFinished) -> NodeError:
    """Why a child execution that did not complete fails the node (or item) that waited."""
    cause = t.error or NodeError("Cancelled", t.status)
    return NodeError(cause.type, f"{t.child_execution_id}: {cause.message}", t.node_id)


def not_owned(t: Transition) -> str:
    """Why a node-addressed transition is ignored when its node (or item) does not expect it."""
    if isinstance(t, NodeCompleted | NodeFailed):
        if t.item is not None:
            return f"item {t.item} of node {t.node_id!r} attempt {t.attempt} is not running"
        return f"node {t.node_id!r} attempt {t.attempt} is not running"
    if isinstance(t, ChildFinished):
        child = t.child_execution_id
        if t.item is not None:
            return f"item {t.item} of node {t.node_id!r} is not waiting for child {child!r}"
        return f"node {t.node_id!r} is not waiting for child {child!r}"
    if isinstance(t, EventArrived):
        return f"node {t.node_id!r} is not waiting for an event"
    if isinstance(t, ApprovalDecided):
        return f"node {t.node_id!r} is not an approval"
    if isinstance(t, ItemsCollected):
        return f"node {t.node_id!r} attempt {t.attempt} is not collecting its items"
    return f"node of {type(t).__name__} is not expecting it"


class NodeKind:
    """How one kind of node runs. The defaults are those of a kind that owns nothing.

    `attempts`: a failed attempt is retried by the node's `retry`, and its timeout
    fails the attempt. `patchable`: a redrive may replace its resolved input.
    `dispatched_at_once`: the step that makes it ready sends its work directly
    instead of a RunNode record of its own (work nodes, delays: a broker round trip saved).
    `runs_last`: such a kind runs once the rest of that step is done (the end, a join: the
    branches the step skips and the arrivals it records come first).
    """

    attempts = False
    patchable = False
    dispatched_at_once = False
    runs_last = False

    def __init__(self, spec: KindSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.transitions: Mapping[type, Handler] = self.owned()

    def owned(self) -> Mapping[type, Handler]:
        """The transitions addressed to a node of this kind, each with its handler."""
        return {}

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        """Start attempt `attempt`; `given`, when not None, replaces the input (a redrive's)."""
        raise NotImplementedError

    def timed_out(self, draft: Draft, node: CompiledNode, run: NodeRun) -> None:
        """The node's `timeout` came due: an attempt kind's running attempt fails."""
        if self.attempts and run.status == _NODE_RUNNING:
            message = f"attempt {run.attempt} did not finish within {node.node.timeout_ms} ms"
            draft.attempt_failed(node, run, NodeError("Timeout", message, node.id))

    def timer_fired(
        self, draft: Draft, node: CompiledNode, run: NodeRun, timer: str, due: int
    ) -> None:
        """A timer of the kind's own (`<node>/<attempt>/<timer>`) came due."""

    def patch_problem(self, node: CompiledNode, given: Any) -> str | None:
        """Why a redrive may not run the node with `given` as its input, or None."""
        return None if self.patchable else f"a {self.name} node takes no patched input"

    def execution_finishing(self, draft: Draft) -> None:
        """The execution ends: drop what the kind keeps in the state besides its node runs."""


class ControlKind(NodeKind):
    """A kind decided inside the engine in one step: its output and the edges it takes."""

    def decide(self, draft: Draft, node: CompiledNode) -> tuple[Any, set[int]]:
        """The node's output and the indexes of the outgoing edges it takes."""
        raise NotImplementedError

    def output_problem(self, node: CompiledNode, output: Any) -> NodeError | None:
        """Why the decided output cannot stand, failing the node; None when it can."""
        return None

    def decided(self, draft: Draft, node: CompiledNode, output: Any, taken: set[int]) -> None:
        """The node completed: on along `taken`."""
        draft.propagate(node, taken)

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        draft.emit_event("node.started", node_id=node.id, attempt=attempt)
        try:
            output, taken = self.decide(draft, node)
        except ExpressionError as exc:
            draft.fail_node(node, attempt, NodeError("ExpressionError", str(exc), node.id), None)
            return
        problem = self.output_problem(node, output)
        if problem is not None:
            draft.fail_node(node, attempt, problem, None)
            return
        errors = draft.earlier_errors(node.id)
        draft.nodes[node.id] = NodeRun(
            node.id, _NODE_COMPLETED, attempt, None, output, None, draft.at, draft.at, errors
        )
        draft.emit_event(
            "node.completed", node_id=node.id, attempt=attempt, data=output, started_at=draft.at
        )
        self.decided(draft, node, output, taken)


def every_edge(node: CompiledNode) -> set[int]:
    return {e.index for e in node.outgoing}


def holds(edge: CompiledEdge, scope: Mapping[str, Any]) -> bool:
    """Whether an edge's `when` holds; anything but a boolean is an error."""
    assert edge.when is not None
    value = edge.when.evaluate(scope)
    if not isinstance(value, bool):
        raise ExpressionError(f"`{edge.when.source}` gave {value!r}, not a boolean")
    return value


def timeout_reason(draft: Draft, node: CompiledNode) -> str:
    """Why what a timed-out node started (a child execution, items) is stopped."""
    return f"node {node.id!r} of {draft.state.execution_id} timed out"


def cancel_child_on_timeout(draft: Draft, node: CompiledNode) -> str | None:
    """Cancel the child execution a timed-out node waits for, if any; the child's id."""
    child = draft.children.pop(node.id, None)
    if child is not None:
        draft.cancel_child(child, timeout_reason(draft, node))
    return child


def waited_too_long(draft: Draft, node: CompiledNode, run: NodeRun, message: str) -> None:
    """A wait's timeout: along its timeout edge if it has one, else it fails with `message`."""
    timeout_edges = {e.index for e in node.outgoing if e.timeout}
    if timeout_edges:
        draft.complete(node, run, {"timed_out": True}, timeout_edges)
    else:
        draft.fail_node(node, run.attempt, NodeError("Timeout", message, node.id), run)
