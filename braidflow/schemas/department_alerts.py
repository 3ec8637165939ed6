"""Department alerts: the CloudEvent `braidflow.department.alert` an execution of a department
sends when it fails, times out or parks (docs/departments.md, "Alerts").

Pure: which lifecycle events make an alert, and the event itself. Its id derives from the
lifecycle event's, so an alert sent again after a crash is the same event; its `department`
extension keeps it from workflows of other departments, as for any event on the bus.
"""

from __future__ import annotations

from braidflow.engine import LifecycleEvent
from braidflow.engine.sla import SLA_BREACHED_TYPE
from braidflow.engine.state import ExecutionStatus, iso_time
from braidflow.schemas.cloudevents import CloudEvent
from braidflow.schemas.lifecycle_events import lifecycle_type

ALERT_TYPE = "braidflow.department.alert"

BUS_TYPES = frozenset({ALERT_TYPE, SLA_BREACHED_TYPE})
"""Types of the `braidflow.` segment that travel on the event bus, never the lifecycle topic:
a trigger on one alone does not make the router follow the lifecycle topic."""

ALERTING = frozenset({"workflow.failed", "workflow.parked"})
"""The lifecycle events an alert is sent for."""

ALERTING_TYPES = frozenset(lifecycle_type(t).encode() for t in ALERTING)
"""Their `ce_type` headers, so a reader skips every other record undecoded."""

TIMED_OUT = "timed_out"
"""The alert's status for a failure by a deadline (an execution has no such status)."""

TIMEOUT_ERRORS = frozenset({"Timeout", "TimeoutError"})
"""Error types of a deadline that passed: the engine's timers and the executor's cut-offs."""


def alert_status(event: LifecycleEvent) -> str | None:
    """`failed`, `timed_out` or `parked` for an event that alerts; None for any other."""
    if event.type not in ALERTING:
        return None
    if event.type == "workflow.parked":
        return ExecutionStatus.PARKED.value
    if event.error is not None and event.error.type in TIMEOUT_ERRORS:
        return TIMED_OUT
    return ExecutionStatus.FAILED.value


def department_alert(event: LifecycleEvent, department: str, tenant: str) -> CloudEvent | None:
    """The alert for a lifecycle event of an execution of `department`; None when the event
    is no failure."""
    status = alert_status(event)
    if status is None:
        return None
    error = event.error
    return CloudEvent(
        id=f"alert:{event.id}",
        source=f"/braidflow/departments/{department}",
        type=ALERT_TYPE,
        subject=event.execution_id,
        time=iso_time(event.at),
        datacontenttype="application/json",
        data={
            "department": department,
            "tenant": tenant,
            "workflow": event.workflow_id,
            "workflow_version": event.workflow_version,
            "execution_id": event.execution_id,
            "status": status,
            "error": None if error is None else {"type": error.type, "message": error.message},
            "node": None if error is None else error.node_id,
        },
        extensions={"department": department},
    )
