"""The `delay` node: waits for a duration (`for`) or until a time (`until`), on a durable timer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from braidflow.engine import ids
from braidflow.engine.nodes.base import NodeKind, normal_edges
from braidflow.engine.state import (
    NodeRun,
    NodeStatus,
    iso_time,
)
from braidflow.topology.durations import parse_timestamp
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft

_TIMER = "delay"


class Delay(NodeKind):
    # Its start only sets a timer: the step that readies it parks the execution, with no
    # RunNode round trip (half the steps of accepting a parked execution).
    dispatched_at_once = True

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        """A timer, or nothing to wait for when the time has passed."""
        try:
            due = _until(draft, node)
        except ExpressionError as exc:
            draft.failed_to_start(node, attempt, exc)
            return
        until = iso_time(due)
        draft.emit_event("node.started", node_id=node.id, attempt=attempt, data={"until": until})
        run = NodeRun(
            node.id,
            NodeStatus.WAITING,
            attempt,
            {"until": until},
            started_at=draft.at,
            errors=draft.earlier_errors(node.id),
        )
        draft.nodes[node.id] = run
        if due <= draft.at:
            draft.complete(node, run, {"waited_until": until}, normal_edges(node))
        else:
            draft.timers[ids.node_timer(node.id, attempt, _TIMER)] = due

    def timer_fired(
        self, draft: Draft, node: CompiledNode, run: NodeRun, timer: str, due: int
    ) -> None:
        if timer == _TIMER and run.status == NodeStatus.WAITING:
            draft.complete(node, run, {"waited_until": iso_time(due)}, normal_edges(node))


def _until(draft: Draft, node: CompiledNode) -> int:
    if node.delay_ms is not None:
        return draft.at + node.delay_ms
    until = draft.render(node, "until")
    if not isinstance(until, str):
        raise ExpressionError(f"params.until gave {until!r}, not an ISO-8601 timestamp")
    try:
        return parse_timestamp(until)
    except ValueError as exc:
        raise ExpressionError(f"params.until: {exc}") from None
