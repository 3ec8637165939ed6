"""The `subworkflow` node: starts a child execution and, unless `wait: false`, waits for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine import ids
from braidflow.engine.messages import ChildFinished, StartExecution
from braidflow.engine.nodes.base import (
    Handler,
    NodeKind,
    cancel_child_on_timeout,
    child_error,
    normal_edges,
    not_owned,
    timeout_timer,
    waited_too_long,
)
from braidflow.engine.state import (
    ExecutionStatus,
    NodeRun,
    NodeStatus,
)
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Subworkflow(NodeKind):
    patchable = True

    def owned(self) -> Mapping[type, Handler]:
        return {ChildFinished: self.child_finished}

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        if given is None:
            try:
                given = draft.render(node, "input", {})
            except ExpressionError as exc:
                draft.failed_to_start(node, attempt, exc)
                return
        s = draft.state
        params = node.node.params
        child = ids.child_execution_id(s.execution_id, node.id, attempt)
        context = draft.parent_view() if params.get("inherit_context", True) else None
        link = draft.link(node, context)
        draft.emit_event(
            "node.started",
            node_id=node.id,
            attempt=attempt,
            data={"workflow": params["workflow"], "execution_id": child, "input": given},
        )
        # Version 0: the latest deployed when the child starts, which only the runtime knows.
        draft.outgoing.append(
            StartExecution(
                ids.start_id(child),
                child,
                draft.at,
                params["workflow"],
                0,
                given,
                None,
                link,
                tenant=s.tenant,
                traceparent=draft.node_traceparent(node.id, attempt),
            )
        )
        errors = draft.earlier_errors(node.id)
        if not params.get("wait", True):
            output = {"execution_id": child}
            draft.nodes[node.id] = NodeRun(
                node.id,
                NodeStatus.COMPLETED,
                attempt,
                given,
                output,
                None,
                draft.at,
                draft.at,
                errors,
            )
            draft.emit_event(
                "node.completed", node_id=node.id, attempt=attempt, data=output, started_at=draft.at
            )
            draft.go_on(node, normal_edges(node))
            return
        draft.nodes[node.id] = NodeRun(
            node.id, NodeStatus.WAITING, attempt, given, started_at=draft.at, errors=errors
        )
        draft.children[node.id] = child
        if node.node.timeout_ms is not None:
            draft.timers[timeout_timer(node.id, attempt)] = draft.at + node.node.timeout_ms

    def child_finished(self, draft: Draft, node: CompiledNode, t: ChildFinished) -> str | None:
        run = draft.nodes.get(t.node_id)
        if (
            t.item is not None
            or run is None
            or run.status != NodeStatus.WAITING
            or draft.children.get(t.node_id) != t.child_execution_id
        ):
            return not_owned(t)
        del draft.children[t.node_id]
        if t.status == ExecutionStatus.COMPLETED:
            draft.complete(node, run, t.output, normal_edges(node))
        else:
            draft.fail_node(node, run.attempt, child_error(t), run)
        return None

    def timed_out(self, draft: Draft, node: CompiledNode, run: NodeRun) -> None:
        if run.status != NodeStatus.WAITING:
            return
        child = cancel_child_on_timeout(draft, node)
        message = f"child execution {child} did not finish within {node.node.timeout_ms} ms"
        waited_too_long(draft, node, run, message)
