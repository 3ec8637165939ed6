"""The `wait_event` node: parks until a CloudEvent of its type that `correlate` accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine import ids
from braidflow.engine.messages import AwaitEvent, EventArrived, NodeError
from braidflow.engine.nodes.base import (
    Handler,
    NodeKind,
    normal_edges,
    not_owned,
    timeout_timer,
    waited_too_long,
)
from braidflow.engine.state import (
    NodeRun,
    NodeStatus,
)
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class WaitEvent(NodeKind):
    def owned(self) -> Mapping[type, Handler]:
        return {EventArrived: self.arrived}

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        """Register the wait and, with a timeout, set its timer."""
        draft.emit_event("node.started", node_id=node.id, attempt=attempt)
        event_type = node.node.params["type"]
        try:
            context = _correlation_context(draft, node)
        except ExpressionError as exc:
            draft.fail_node(node, attempt, NodeError("ExpressionError", str(exc), node.id), None)
            return
        draft.nodes[node.id] = NodeRun(
            node.id,
            NodeStatus.WAITING,
            attempt,
            {"type": event_type},
            started_at=draft.at,
            errors=draft.earlier_errors(node.id),
        )
        expires_at = None
        if node.node.timeout_ms is not None:
            expires_at = draft.at + node.node.timeout_ms
            draft.timers[timeout_timer(node.id, attempt)] = expires_at
        s = draft.state
        draft.outgoing.append(
            AwaitEvent(
                ids.wait_id(s.execution_id, node.id, attempt),
                s.execution_id,
                s.workflow_id,
                s.workflow_version,
                node.id,
                event_type,
                draft.at,
                expires_at,
                context,
                s.tenant,
                draft.node_traceparent(node.id, attempt),
            )
        )

    def arrived(self, draft: Draft, node: CompiledNode, t: EventArrived) -> str | None:
        run = draft.nodes.get(t.node_id)
        if run is None or run.status != NodeStatus.WAITING:
            return not_owned(t)
        draft.complete(node, run, dict(t.event), normal_edges(node))
        return None

    def timed_out(self, draft: Draft, node: CompiledNode, run: NodeRun) -> None:
        if run.status == NodeStatus.WAITING:
            message = (
                f"no {node.node.params.get('type')!r} event arrived"
                f" within {node.node.timeout_ms} ms"
            )
            waited_too_long(draft, node, run, message)


def _correlation_context(draft: Draft, node: CompiledNode) -> dict[str, Any]:
    """The values `correlate` reads besides `event`, as plain JSON."""
    if node.correlate is None:
        return {}
    scope = draft.scope()
    context: dict[str, Any] = {}
    for name in node.correlate.names - {"event"}:
        if name == "nodes":
            context["nodes"] = {
                n: {"output": draft.output_of(n), "status": draft.nodes[n].status}
                for n in node.correlate.nodes
                if n in draft.nodes
            }
        else:
            # `get`: a name with no value yet (`dept`) reads as null, as in templates.
            context[name] = scope.get(name)
    return context
