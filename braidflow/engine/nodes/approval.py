"""The `approval` node: parks until someone decides (`ApprovalDecided`), or its timeout does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.messages import ApprovalDecided
from braidflow.engine.nodes.base import (
    Handler,
    NodeKind,
    normal_edges,
    timeout_timer,
    waited_too_long,
)
from braidflow.engine.state import (
    NodeRun,
    NodeStatus,
    iso_time,
)
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.model import DEFAULT_CHOICES
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Approval(NodeKind):
    def owned(self) -> Mapping[type, Handler]:
        return {ApprovalDecided: self.decided}

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        try:
            message = draft.render(node, "message")
        except ExpressionError as exc:
            draft.failed_to_start(node, attempt, exc)
            return
        choices = list(node.node.params.get("choices", DEFAULT_CHOICES))
        timeout_at = None
        if node.node.timeout_ms is not None:
            due = draft.at + node.node.timeout_ms
            draft.timers[timeout_timer(node.id, attempt)] = due
            timeout_at = iso_time(due)
        draft.nodes[node.id] = NodeRun(
            node.id,
            NodeStatus.WAITING,
            attempt,
            {"message": message, "choices": choices},
            started_at=draft.at,
            errors=draft.earlier_errors(node.id),
        )
        draft.emit_event(
            "node.started",
            node_id=node.id,
            attempt=attempt,
            data={
                "kind": "approval",
                "message": message,
                "choices": choices,
                "department": draft.workflow.definition.department,
                "timeout_at": timeout_at,
            },
        )

    def decided(self, draft: Draft, node: CompiledNode, t: ApprovalDecided) -> str | None:
        run = draft.nodes.get(t.node_id)
        if run is not None and run.status == NodeStatus.COMPLETED:
            return f"approval {t.node_id!r} already decided"
        if run is None or run.status != NodeStatus.WAITING:
            return f"approval {t.node_id!r} is not waiting for a decision"
        choices = list(node.node.params.get("choices", DEFAULT_CHOICES))
        if t.choice not in choices:
            return f"choice {t.choice!r} is not one of {choices}"
        # The API checks the reply first; the engine stays safe against any sender.
        if node.reply_validator is not None:
            problem = next(iter(node.reply_validator.iter_errors(t.data)), None)
            if problem is not None:
                return f"data does not fit the approval's input schema: {problem.message}"
        draft.record("approval", t.by, t.at, t.node_id)
        output = {
            "choice": t.choice,
            "by": t.by,
            "comment": t.comment,
            "data": t.data,
            "decided_at": iso_time(t.at),
            "decision_id": t.decision_id,
        }
        draft.complete(node, run, output, normal_edges(node))
        return None

    def timed_out(self, draft: Draft, node: CompiledNode, run: NodeRun) -> None:
        if run.status != NodeStatus.WAITING:
            return
        on_timeout = node.node.params.get("on_timeout", "fail")
        if on_timeout == "fail":
            waited_too_long(draft, node, run, f"no decision within {node.node.timeout_ms} ms")
            return
        output = {
            "choice": on_timeout,
            "by": "timeout",
            "comment": None,
            "data": None,
            "decided_at": iso_time(draft.at),
            "decision_id": None,
        }
        draft.complete(node, run, output, normal_edges(node))
