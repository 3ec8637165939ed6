"""Which lifecycle events of a department's executions make an alert, and the alert itself:
a CloudEvent `braidflow.department.alert` with a stable id, kept to its department."""

from __future__ import annotations

import pytest

from braidflow.engine import LifecycleEvent, NodeError
from braidflow.schemas.cloudevents import from_structured, structured_document, topic_for
from braidflow.schemas.department_alerts import ALERT_TYPE, alert_status, department_alert

T0 = 1_795_000_000_000


def event(type_: str, error: NodeError | None = None) -> LifecycleEvent:
    return LifecycleEvent(f"ex-1:{type_}", type_, "ex-1", "triage", 3, T0, error=error)


@pytest.mark.parametrize(
    ("lifecycle", "status"),
    [
        (event("workflow.failed", NodeError("http.5xx", "GET x: 503", "call")), "failed"),
        (
            event("workflow.failed", NodeError("Timeout", "did not finish within 50 ms")),
            "timed_out",
        ),
        (event("workflow.failed", NodeError("TimeoutError", "no answer", "call")), "timed_out"),
        (event("workflow.parked", NodeError("http.5xx", "GET x: 503", "call")), "parked"),
        (event("workflow.completed"), None),
        (event("workflow.cancelled"), None),
        (event("node.failed", NodeError("E", "m", "call")), None),
    ],
)
def test_failures_timeouts_and_parks_alert_and_nothing_else(
    lifecycle: LifecycleEvent, status: str | None
) -> None:
    assert alert_status(lifecycle) == status
    assert (department_alert(lifecycle, "support", "default") is None) == (status is None)


def test_the_alert_names_the_department_workflow_execution_status_error_and_node() -> None:
    failed = event("workflow.failed", NodeError("http.5xx", "GET x: 503", "call"))
    alert = department_alert(failed, "support", "default")
    assert alert is not None
    assert alert.type == ALERT_TYPE == "braidflow.department.alert"
    assert alert.department == "support"
    assert alert.subject == "ex-1"
    assert alert.data == {
        "department": "support",
        "tenant": "default",
        "workflow": "triage",
        "workflow_version": 3,
        "execution_id": "ex-1",
        "status": "failed",
        "error": {"type": "http.5xx", "message": "GET x: 503"},
        "node": "call",
    }
    # Sent again after a crash, it is the same event.
    assert department_alert(failed, "support", "default") == alert
    assert from_structured(structured_document(alert)) == alert
    assert topic_for(alert.type) == "events.braidflow"


def test_an_execution_timeout_names_no_node() -> None:
    timed_out = event("workflow.failed", NodeError("Timeout", "did not finish within 50 ms"))
    alert = department_alert(timed_out, "support", "default")
    assert alert is not None and alert.data["node"] is None
    assert alert.data["status"] == "timed_out"
