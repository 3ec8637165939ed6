"""The `traceparent` header of a control action sent through the API: the execution's span,
or the span of the node run the action ends (an approval's); none while the execution is
only accepted, whose trace the view does not show yet."""

from __future__ import annotations

from braidflow.engine.trace_context import ExecutionTrace
from braidflow.runtime.backend import action_traceparent

GIVEN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


def test_an_action_names_the_executions_span_in_the_executions_trace() -> None:
    trace = ExecutionTrace.of("ex", GIVEN)
    view = {"execution_id": "ex", "trace_id": trace.trace_id, "traceparent": trace.header}
    assert action_traceparent(view) == trace.header
    # The caller's flags (not sampled) stay with the trace.
    assert action_traceparent(view, "ask", 2) == trace.node_header("ask", 2)
    assert trace.node_header("ask", 2).endswith("-00")


def test_an_accepted_execution_has_no_trace_to_name_yet() -> None:
    assert action_traceparent({"execution_id": "ex", "trace_id": None, "traceparent": None}) is None
