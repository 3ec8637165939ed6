"""The `publish` node: the engine emits its CloudEvent itself (a `PublishEvent`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from braidflow.engine import ids
from braidflow.engine.messages import PublishEvent
from braidflow.engine.nodes.base import ControlKind, every_edge
from braidflow.topology.event_types import topic_segment_problem
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Publish(ControlKind):
    def decide(self, draft: Draft, node: CompiledNode) -> tuple[Any, set[int]]:
        event_type = draft.render(node, "type")
        if not isinstance(event_type, str) or not event_type:
            raise ExpressionError(f"params.type gave {event_type!r}, not an event type")
        problem = topic_segment_problem(event_type)
        if problem is not None:
            raise ExpressionError(f"params.type gave {problem}")
        subject = draft.render(node, "subject")
        if subject is not None and not isinstance(subject, str):
            raise ExpressionError(f"params.subject gave {subject!r}, not a string")
        s = draft.state
        event_id = ids.published_id(s.execution_id, node.id)
        draft.outgoing.append(
            PublishEvent(
                event_id,
                s.execution_id,
                s.workflow_id,
                node.id,
                draft.at,
                event_type,
                draft.render(node, "data"),
                subject,
                s.tenant,
            )
        )
        return {"id": event_id, "type": event_type}, every_edge(node)
