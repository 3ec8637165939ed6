"""W3C traceparent: a malformed one is ignored; an execution keeps a valid one, and the span
ids of the execution and its node runs derive from their ids, so every worker names the same
spans and the records a node run sends name its span as their parent."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import pytest
from engine_driver import applied, of_type, settle, workflow
from engine_scenarios import EX, T0, failed

from braidflow.engine import (
    CancelExecution,
    LifecycleEvent,
    NodeCompleted,
    ParentLink,
    StartExecution,
    TaskRequest,
)
from braidflow.engine.state import ControlAction, ExecutionState, NodeRun, NodeStatus
from braidflow.engine.trace_context import (
    ExecutionTrace,
    derived_id,
    ended_spans,
    parse_traceparent,
    record_traceparent,
    timer_traceparent,
    valid_traceparent,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"
GIVEN = f"00-{TRACE}-{CALLER}-01"

WORK = workflow(
    """
id: work
nodes:
  - {id: fetch, type: task, params: {handler: h.fetch}, retry: {max_attempts: 2, backoff: fixed, initial: 1s}}
  - {id: done, type: end}
edges:
  - {from: fetch, to: done}
"""
)
CALLS = workflow(
    """
id: calls
nodes:
  - {id: call, type: subworkflow, params: {workflow: work}}
  - {id: done, type: end}
edges:
  - {from: call, to: done}
"""
)


def test_a_valid_traceparent_is_read_as_its_parts() -> None:
    parsed = parse_traceparent(GIVEN)
    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.flags) == (TRACE, CALLER, "01")
    assert parsed.header == GIVEN
    assert valid_traceparent(f"  {GIVEN} ") == GIVEN


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        "garbage",
        GIVEN.upper(),  # upper-case hex is not allowed
        f"00-{'0' * 32}-{CALLER}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{CALLER}-01",  # version ff is invalid
        f"00-{TRACE}-{CALLER}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE[:-1]}-{CALLER}-01",
        f"00-{TRACE}-{CALLER}-1",
        f"00_{TRACE}_{CALLER}_01",
        f"00-{TRACE}-{CALLER}-0g",
    ],
)
def test_a_malformed_traceparent_is_ignored(value: object) -> None:
    assert parse_traceparent(value) is None
    assert valid_traceparent(value) is None


def test_a_later_version_is_read_for_its_first_four_fields_and_sent_as_version_00() -> None:
    assert valid_traceparent(f"01-{TRACE}-{CALLER}-01-what-comes-later") == GIVEN
    assert valid_traceparent(f"01-{TRACE}-{CALLER}-01x") is None


def test_span_ids_derive_from_the_execution_and_the_node_run() -> None:
    trace = ExecutionTrace.of("ex-1", GIVEN)
    again = ExecutionTrace.of("ex-1", GIVEN)
    assert trace == again
    assert (trace.trace_id, trace.parent_span_id, trace.flags) == (TRACE, CALLER, "01")
    assert trace.span_id == derived_id(16, "execution", "ex-1")
    ids = {
        trace.span_id,
        trace.node_span_id("a", 1),
        trace.node_span_id("a", 2),
        trace.node_span_id("b", 1),
        ExecutionTrace.of("ex-2", GIVEN).span_id,
    }
    assert len(ids) == 5
    assert all(len(i) == 16 and int(i, 16) != 0 for i in ids)
    assert trace.node_header("a", 2) == f"00-{TRACE}-{trace.node_span_id('a', 2)}-01"


def test_a_node_runs_span_id_is_derived_once_while_its_execution_is_in_flight() -> None:
    # Every worker derives the same id; the one that asks again reuses it (no sha256 again).
    trace = ExecutionTrace.of("ex-1", GIVEN)
    first = trace.node_span_id("a", 1)
    assert first == derived_id(16, "node", "ex-1", "a", "1")
    assert ExecutionTrace.of("ex-1", GIVEN).node_span_id("a", 1) is first
    assert trace.node_span_id("a", 2) == derived_id(16, "node", "ex-1", "a", "2")


def test_without_a_traceparent_an_execution_roots_a_trace_of_its_own() -> None:
    trace = ExecutionTrace.of("ex-1", None)
    assert trace.parent_span_id is None
    assert trace.trace_id == derived_id(32, "trace", "ex-1")
    assert trace.trace_id != ExecutionTrace.of("ex-2", None).trace_id
    assert ExecutionTrace.of("ex-1", "not one") == trace


def test_the_execution_keeps_a_valid_traceparent_and_drops_a_malformed_one() -> None:
    kept = applied(WORK, None, StartExecution("s", EX, T0, "work", 1, traceparent=GIVEN))
    assert kept.state is not None and kept.state.traceparent == GIVEN
    dropped = applied(WORK, None, StartExecution("s", EX, T0, "work", 1, traceparent="00-x"))
    assert dropped.state is not None and dropped.state.traceparent is None


def test_each_attempt_of_a_task_carries_its_own_span_in_the_trace() -> None:
    result = applied(WORK, None, StartExecution("s", EX, T0, "work", 1, traceparent=GIVEN))
    (first,) = of_type(result.outgoing, TaskRequest)
    trace = ExecutionTrace.of(EX, GIVEN)
    assert first.traceparent == trace.node_header("fetch", 1)
    state = applied(WORK, result.state, failed("fetch", 1, T0 + 10)).state
    retried = applied(WORK, state, _retry_timer(state))
    (second,) = of_type(retried.outgoing, TaskRequest)
    assert second.traceparent == trace.node_header("fetch", 2)
    assert parse_traceparent(second.traceparent).trace_id == TRACE  # type: ignore[union-attr]


def _retry_timer(state: object) -> object:
    from braidflow.engine import TimerFired

    (timer_id, due), *_ = state.timers.items()  # type: ignore[attr-defined]
    return TimerFired(f"{EX}/timer/{timer_id}", EX, due, timer_id)


def test_a_child_execution_is_a_child_of_its_calling_node_run() -> None:
    parent = applied(CALLS, None, StartExecution("s", EX, T0, "calls", 1, traceparent=GIVEN))
    state, sent = settle(CALLS, parent)
    (child_start,) = of_type(sent, StartExecution)
    parent_trace = ExecutionTrace.of(EX, GIVEN)
    child_trace = ExecutionTrace.of(child_start.execution_id, child_start.traceparent)
    assert child_trace.trace_id == TRACE
    assert child_trace.parent_span_id == parent_trace.node_span_id("call", 1)
    assert state.traceparent == GIVEN


def test_a_record_names_the_span_of_the_node_run_it_comes_from() -> None:
    result = applied(WORK, None, StartExecution("s", EX, T0, "work", 1, traceparent=GIVEN))
    state = result.state
    assert state is not None
    trace = ExecutionTrace.of(EX, GIVEN)
    headers = {
        (type(m).__name__, getattr(m, "type", None)): record_traceparent(m, trace, state.nodes)
        for m in result.outgoing
    }
    assert headers[("LifecycleEvent", "workflow.started")] == trace.header
    assert headers[("LifecycleEvent", "node.started")] == trace.node_header("fetch", 1)
    assert headers[("TaskRequest", None)] == trace.node_header("fetch", 1)
    # A notice for another execution comes from this execution as a whole.
    cancel = CancelExecution("c", "someone-else", T0)
    assert record_traceparent(cancel, trace, state.nodes) == trace.header


def test_a_step_ends_the_spans_of_the_node_runs_and_of_the_execution() -> None:
    start = applied(WORK, None, StartExecution("s", EX, T0, "work", 1, traceparent=GIVEN))
    assert ended_spans(None, start.state, start.outgoing) == []  # type: ignore[arg-type]
    completed = applied(WORK, start.state, NodeCompleted("d", EX, T0 + 40, "fetch", 1, "ok"))
    state, sent = settle(WORK, completed)
    spans = ended_spans(start.state, state, sent, {"fetch": "task"})
    trace = ExecutionTrace.of(EX, GIVEN)
    by_name = {span.name: span for span in spans}
    assert set(by_name) == {"node fetch", "node done", "workflow work"}
    assert by_name["node done"].parent_span_id == trace.span_id
    node, execution = by_name["node fetch"], by_name["workflow work"]
    assert (node.trace_id, node.span_id, node.parent_span_id) == (
        TRACE,
        trace.node_span_id("fetch", 1),
        trace.span_id,
    )
    assert (node.start_ms, node.end_ms, node.status) == (T0, T0 + 40, "completed")
    assert node.attributes["braidflow.node_type"] == "task"
    assert (execution.span_id, execution.parent_span_id) == (trace.span_id, CALLER)
    assert (execution.start_ms, execution.end_ms, execution.error) == (T0, T0 + 40, None)


def test_a_failed_attempt_ends_its_span_in_error_and_a_cancel_ends_the_running_one() -> None:
    start = applied(WORK, None, StartExecution("s", EX, T0, "work", 1))
    retrying = applied(WORK, start.state, failed("fetch", 1, T0 + 10))
    (span,) = ended_spans(start.state, retrying.state, retrying.outgoing)  # type: ignore[arg-type]
    assert (span.status, span.error is not None, span.end_ms) == ("retrying", True, T0 + 10)
    # Cancelled while waiting to retry: attempt 1's span has ended already.
    cancelled = applied(WORK, retrying.state, CancelExecution("c", EX, T0 + 20))
    names = [s.name for s in ended_spans(retrying.state, cancelled.state, cancelled.outgoing)]  # type: ignore[arg-type]
    assert names == ["workflow work"]
    # Cancelled while attempt 2 runs: its span ends, cancelled, with the execution's.
    second = applied(WORK, retrying.state, _retry_timer(retrying.state))
    cancelled = applied(WORK, second.state, CancelExecution("c", EX, T0 + 1_500))
    spans = ended_spans(second.state, cancelled.state, cancelled.outgoing)  # type: ignore[arg-type]
    node = next(s for s in spans if s.name == "node fetch")
    assert node.status == NodeStatus.CANCELLED
    assert node.span_id == ExecutionTrace.of(EX, None).node_span_id("fetch", 2)
    execution = next(s for s in spans if s.name == "workflow work")
    assert execution.parent_span_id is None and execution.status == "cancelled"


def test_spans_of_another_executions_events_are_not_this_executions() -> None:
    start = applied(WORK, None, StartExecution("s", EX, T0, "work", 1))
    other = LifecycleEvent("x", "workflow.completed", "other", "work", 1, T0)
    assert ended_spans(start.state, start.state, [other]) == []  # type: ignore[arg-type]


def test_a_child_start_keeps_its_parent_link_and_trace_together() -> None:
    link = ParentLink(EX, "calls", "call", 1)
    header = ExecutionTrace.of(EX, GIVEN).node_header("call", 1)
    result = applied(
        WORK,
        None,
        StartExecution("s", "ex.call", T0, "work", 1, None, None, link, traceparent=header),
    )
    assert result.state is not None and result.state.traceparent == header


@pytest.mark.parametrize(
    ("timer_id", "node_run"),
    [
        ("wait/2/timeout", ("wait", 2)),
        ("nap/1/delay", ("nap", 1)),
        ("ask/1/timeout", ("ask", 1)),
        ("work/1/retry", None),
        ("meet/join-timeout", None),
        ("execution/timeout", None),
        ("execution/sla", None),
    ],
)
def test_a_fired_timer_names_its_node_runs_span_or_else_the_executions(
    timer_id: str, node_run: tuple[str, int] | None
) -> None:
    trace = ExecutionTrace.of("ex", GIVEN)
    expected = trace.header if node_run is None else trace.node_header(*node_run)
    assert timer_traceparent(trace, timer_id) == expected
    assert parse_traceparent(expected) is not None


def test_a_redrive_finding_the_execution_running_ends_its_span_and_opens_the_next() -> None:
    failed_run = NodeRun("a", NodeStatus.FAILED, 1, None, started_at=T0, completed_at=T0 + 5)
    before = ExecutionState(
        EX, "work", 1, "running", T0, T0 + 5, nodes={"a": failed_run}, traceparent=GIVEN
    )
    redrive = ControlAction("redrive", "ada", T0 + 9, "a")
    retried = NodeRun("a", NodeStatus.RUNNING, 2, None, started_at=T0 + 9)
    after = replace(before, nodes={"a": retried}, control=(redrive,), updated_at=T0 + 9)
    (span,) = ended_spans(before, after, [])
    trace = ExecutionTrace.of(EX, GIVEN)
    assert (span.name, span.span_id, span.parent_span_id) == (
        "workflow work",
        trace.span_id,
        CALLER,
    )
    assert (span.start_ms, span.end_ms, span.status) == (T0, T0 + 9, "redriven")
    # The attempt the redrive started is a child of the redrive's span when it ends.
    done = LifecycleEvent("e", "node.completed", EX, "work", 1, T0 + 20, node_id="a", attempt=2)
    (node,) = ended_spans(after, after, [done])
    assert node.parent_span_id == trace.redrive_span_id(1)


def test_the_kept_trace_ids_of_many_ended_executions_take_a_few_mib_at_most() -> None:
    # 100,000 parked executions fire once each: their trace ids are not worth 11 MiB.
    tracemalloc.start()
    try:
        for n in range(30_000):
            trace = ExecutionTrace.of(f"{n:036d}", None)
            trace.node_header("nap", 1)
            trace.node_header("done", 1)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 5 * 1024 * 1024
