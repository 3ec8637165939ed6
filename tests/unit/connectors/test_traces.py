"""Spans through the OpenTelemetry SDK (its in-memory exporter): one trace per execution and
its children, each node run's span a child of its execution's, a child execution's span a
child of its calling node run's; off unless the OTEL_* variables ask for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from engine_driver import applied, of_type, workflow
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from braidflow.connectors.traces import StepSpans, exporters_from_environment, tracing_wanted
from braidflow.engine import (
    CancelExecution,
    ChildFinished,
    ExecutionState,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    RedriveNode,
    RunNode,
    StartExecution,
    TaskRequest,
    Transition,
)
from braidflow.engine.trace_context import ExecutionTrace
from braidflow.topology import Workflow

T0 = 1_750_000_000_000
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"
GIVEN = f"00-{TRACE}-{CALLER}-01"

CHILD = workflow(
    """
id: child
nodes:
  - {id: work, type: task, params: {handler: h.work}}
  - {id: done, type: end}
edges:
  - {from: work, to: done}
"""
)
PARENT = workflow(
    """
id: parent
nodes:
  - {id: fetch, type: http, params: {method: GET, url: "http://127.0.0.1:1/x"}}
  - {id: call, type: subworkflow, params: {workflow: child}}
  - {id: done, type: end}
edges:
  - {from: fetch, to: call}
  - {from: call, to: done}
"""
)


class Recorder:
    """Feeds every applied step to `StepSpans`, as the orchestrator's hook does."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.spans = StepSpans([SimpleSpanProcessor(self.exporter)])

    def apply(
        self, wf: Workflow, before: ExecutionState | None, transition: Transition
    ) -> tuple[ExecutionState | None, list[Outgoing]]:
        """Apply `transition` and the control steps it asks for, each one observed."""
        types = {node_id: node.type for node_id, node in wf.nodes.items()}
        state, sent, pending = before, [], [transition]
        while pending:
            result = applied(wf, state, pending.pop(0))
            self.spans.observe(state, result, types)
            state = result.state
            sent += result.outgoing
            pending += of_type(result.outgoing, RunNode)
        return state, sent

    def finished(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()


def run_parent_and_child(recorder: Recorder, traceparent: str | None) -> None:
    start = StartExecution("s", "ex", T0, "parent", 1, {}, traceparent=traceparent)
    state, sent = recorder.apply(PARENT, None, start)
    (fetch,) = of_type(sent, TaskRequest)
    fetched = NodeCompleted("f", "ex", T0 + 10, "fetch", fetch.attempt, {})
    parent_state, sent = recorder.apply(PARENT, state, fetched)
    (child_start,) = of_type(sent, StartExecution)
    # The runtime pins the version a child's start leaves open.
    child, sent = recorder.apply(CHILD, None, replace(child_start, workflow_version=1))
    (work,) = of_type(sent, TaskRequest)
    error = NodeError("Boom", "it broke", "work")
    broke = NodeFailed("w", child_start.execution_id, T0 + 30, "work", work.attempt, error)
    child, _ = recorder.apply(CHILD, child, broke)
    assert child is not None and child.status == "failed"
    notice = ChildFinished(
        "n", "ex", T0 + 40, "call", child_start.execution_id, "completed", {"ok": True}
    )
    recorder.apply(PARENT, parent_state, notice)


def test_an_execution_and_its_child_make_one_trace_with_the_right_parents() -> None:
    recorder = Recorder()
    run_parent_and_child(recorder, GIVEN)
    spans = {span.name: span for span in recorder.finished()}
    assert set(spans) == {
        "workflow parent",
        "node fetch",
        "node call",
        "node done",
        "workflow child",
        "node work",
    }
    assert {span.context.trace_id for span in spans.values()} == {int(TRACE, 16)}

    def parent_of(name: str) -> int | None:
        parent = spans[name].parent
        return None if parent is None else parent.span_id

    def id_of(name: str) -> int:
        return spans[name].context.span_id

    assert parent_of("workflow parent") == int(CALLER, 16)
    for node in ("node fetch", "node call", "node done"):
        assert parent_of(node) == id_of("workflow parent")
    assert parent_of("workflow child") == id_of("node call")
    assert parent_of("node work") == id_of("workflow child")
    # The ids are the derived ones: whichever worker emits a span names it the same.
    assert id_of("node fetch") == int(ExecutionTrace.of("ex", GIVEN).node_span_id("fetch", 1), 16)
    assert spans["node fetch"].start_time == T0 * 1_000_000
    assert spans["node fetch"].end_time == (T0 + 10) * 1_000_000
    assert spans["node call"].end_time == (T0 + 40) * 1_000_000
    assert spans["node work"].status.status_code == StatusCode.ERROR
    assert spans["workflow child"].status.status_code == StatusCode.ERROR
    assert spans["node fetch"].attributes["braidflow.node_type"] == "http"  # type: ignore[index]
    assert spans["workflow parent"].attributes["braidflow.execution_id"] == "ex"  # type: ignore[index]


def test_an_execution_started_without_a_traceparent_roots_its_own_trace() -> None:
    recorder = Recorder()
    run_parent_and_child(recorder, None)
    spans = {span.name: span for span in recorder.finished()}
    assert spans["workflow parent"].parent is None
    expected = int(ExecutionTrace.of("ex", None).trace_id, 16)
    assert {span.context.trace_id for span in spans.values()} == {expected}


def test_a_trace_the_caller_did_not_sample_is_not_exported() -> None:
    recorder = Recorder()
    run_parent_and_child(recorder, f"00-{TRACE}-{CALLER}-00")
    assert recorder.finished() == ()


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:1"}, False),
    ],
)
def test_spans_are_exported_only_when_the_otel_variables_ask(
    environ: dict[str, str], wanted: bool
) -> None:
    assert tracing_wanted(environ) is wanted
    assert (StepSpans.from_environment(environ) is not None) is wanted


def test_an_exporter_or_protocol_braidflow_does_not_ship_is_named() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER: 'zipkin'"):
        exporters_from_environment({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json'"):
        exporters_from_environment({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def _redrivable(on_failure: str) -> Workflow:
    return workflow(
        f"""
id: flaky
settings: {{on_failure: {on_failure}}}
nodes:
  - {{id: work, type: task, params: {{handler: h.work}}}}
  - {{id: done, type: end}}
edges:
  - {{from: work, to: done}}
"""
    )


def _fail_then_redrive(recorder: Recorder, wf: Workflow) -> ExecutionState:
    """Start, fail the task for good, redrive it, complete the new attempt."""
    state, sent = recorder.apply(wf, None, StartExecution("s", "ex", T0, "flaky", 1, {}))
    (first,) = of_type(sent, TaskRequest)
    error = NodeError("Boom", "it broke", "work")
    state, _ = recorder.apply(wf, state, NodeFailed("f", "ex", T0 + 10, "work", 1, error))
    state, sent = recorder.apply(wf, state, RedriveNode("r", "ex", T0 + 20, "work", "ada"))
    (second,) = of_type(sent, TaskRequest)
    assert (first.attempt, second.attempt) == (1, 2)
    state, _ = recorder.apply(wf, state, NodeCompleted("c", "ex", T0 + 30, "work", 2, {}))
    assert state is not None and state.status == "completed"
    return state


@pytest.mark.parametrize("on_failure", ["fail", "park"])
def test_a_redrive_continues_the_trace_in_a_span_of_its_own_and_no_span_ends_twice(
    on_failure: str,
) -> None:
    recorder = Recorder()
    _fail_then_redrive(recorder, _redrivable(on_failure))
    spans = recorder.finished()
    ids = [span.context.span_id for span in spans]
    assert len(ids) == len(set(ids)), [span.name for span in spans]
    assert {span.context.trace_id for span in spans} == {
        int(ExecutionTrace.of("ex", None).trace_id, 16)
    }
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (execution,) = by_name["workflow flaky"]
    (redrive,) = by_name["redrive flaky"]
    assert execution.attributes["braidflow.status"] == (
        "parked" if on_failure == "park" else "failed"
    )
    assert redrive.attributes["braidflow.status"] == "completed"
    assert redrive.attributes["braidflow.redrive"] == 1
    assert redrive.parent is not None and redrive.parent.span_id == execution.context.span_id
    assert redrive.start_time == (T0 + 20) * 1_000_000
    attempts = {span.attributes["braidflow.attempt"]: span for span in by_name["node work"]}
    trace = ExecutionTrace.of("ex", None)
    # The redriven attempt is the redrive's child, with the span its task request named.
    assert attempts[2].context.span_id == int(trace.node_span_id("work", 2), 16)
    assert attempts[2].parent is not None and attempts[2].parent.span_id == redrive.context.span_id
    assert attempts[1].parent is not None
    assert attempts[1].parent.span_id == execution.context.span_id
    (done,) = by_name["node done"]
    assert done.parent is not None and done.parent.span_id == redrive.context.span_id


def test_cancelling_a_parked_execution_ends_no_span_a_second_time() -> None:
    recorder = Recorder()
    wf = _redrivable("park")
    state, _ = recorder.apply(wf, None, StartExecution("s", "ex", T0, "flaky", 1, {}))
    error = NodeError("Boom", "it broke", "work")
    state, _ = recorder.apply(wf, state, NodeFailed("f", "ex", T0 + 10, "work", 1, error))
    assert state is not None and state.status == "parked"
    state, _ = recorder.apply(wf, state, CancelExecution("c", "ex", T0 + 20, "enough", "ada"))
    assert state is not None and state.status == "cancelled"
    names = [span.name for span in recorder.finished()]
    assert sorted(names) == ["node work", "workflow flaky"]
