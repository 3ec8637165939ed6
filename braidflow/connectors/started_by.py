"""What started an execution, as `GET /executions/{id}` shows it (`started_by`).

An execution started by a domain event, a webhook call or a schedule slot
keeps that event in its state (the `StartExecution` carried it); one started
by a subworkflow node keeps its parent link; any other was started through
the API (`POST /workflows/{id}/executions`).
"""

from __future__ import annotations

from typing import Any

from braidflow.engine import ExecutionState

SCHEDULE_EVENT_TYPE = "braidflow.schedule"
WEBHOOK_EVENT_PREFIX = "braidflow.webhook."
EVENT_ATTRIBUTES = ("id", "type", "source", "subject", "time")


def started_by(state: ExecutionState) -> dict[str, Any]:
    """`{kind: event|webhook|schedule, id, type, source, subject, time}`, `{kind: parent, ...}`
    or `{kind: api}`."""
    if state.parent is not None:
        return {
            "kind": "parent",
            "execution_id": state.parent.execution_id,
            "workflow_id": state.parent.workflow_id,
            "node_id": state.parent.node_id,
        }
    event = state.event
    if event is None:
        return {"kind": "api"}
    event_type = str(event.get("type") or "")
    if event_type == SCHEDULE_EVENT_TYPE:
        kind = "schedule"
    elif event_type.startswith(WEBHOOK_EVENT_PREFIX):
        kind = "webhook"
    else:
        kind = "event"
    return {"kind": kind, **{name: event.get(name) for name in EVENT_ATTRIBUTES}}
