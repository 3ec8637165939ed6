"""Department caps, the engine's side: a start marked with an admission key waits `queued`
until its AdmitExecution, and every end (completed, failed, cancelled, timed out) releases
its slot; an end while queued gives up its place."""

from __future__ import annotations

from engine_driver import events, of_type, settle, workflow

from braidflow.engine import (
    AdmissionReleased,
    AdmissionRequested,
    AdmitExecution,
    CancelExecution,
    NodeCompleted,
    StartExecution,
    TaskRequest,
    TimerFired,
    step,
)
from braidflow.engine.ids import EXECUTION_TIMER
from braidflow.engine.state import ExecutionStatus
from braidflow.engine.trace_context import ExecutionTrace

T0 = 1_795_000_000_000
GIVEN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
KEY = "default/support"

CALL = workflow(
    """
id: call
department: support
settings: {timeout: 1m}
nodes:
  - {id: fetch, type: task, params: {handler: fetch}}
  - {id: done, type: end}
edges:
  - {from: fetch, to: done}
"""
)


def queued():
    start = StartExecution("s", "ex", T0, "call", 1, {}, admission=KEY)
    return step(CALL, None, start)


def test_a_start_of_a_capped_department_waits_queued_and_asks_for_a_slot() -> None:
    result = queued()
    assert result.state is not None
    assert result.state.status == ExecutionStatus.QUEUED and result.state.admission == KEY
    assert events(result.outgoing) == ["workflow.queued"]
    assert of_type(result.outgoing, AdmissionRequested) == [
        AdmissionRequested("ex/queued", "ex", T0, KEY, ExecutionTrace.of("ex", None).header)
    ]
    assert of_type(result.outgoing, TaskRequest) == [] and result.state.timers == {}


def test_its_admission_starts_it_and_its_time_limit_counts_from_then() -> None:
    admitted = step(CALL, queued().state, AdmitExecution("ex/admit", "ex", T0 + 5_000))
    assert admitted.state is not None and admitted.state.status == ExecutionStatus.RUNNING
    assert events(admitted.outgoing) == ["workflow.started", "node.started:fetch"]
    assert [t.node_id for t in of_type(admitted.outgoing, TaskRequest)] == ["fetch"]
    assert admitted.state.timers[EXECUTION_TIMER] == T0 + 5_000 + 60_000
    again = step(CALL, admitted.state, AdmitExecution("ex/admit", "ex", T0 + 6_000))
    assert again.ignored is not None and again.outgoing == ()


def test_a_queued_start_asks_for_its_slot_naming_its_span_in_the_trace_it_arrived_with() -> None:
    start = StartExecution("s", "ex", T0, "call", 1, {}, admission=KEY, traceparent=GIVEN)
    (request,) = of_type(step(CALL, None, start).outgoing, AdmissionRequested)
    # The execution's span: the AdmitExecution that starts it carries this header.
    assert request.traceparent == ExecutionTrace.of("ex", GIVEN).header
    assert request.traceparent[3:35] == GIVEN[3:35]


def test_a_start_without_an_admission_key_runs_at_once_and_releases_nothing() -> None:
    start = step(CALL, None, StartExecution("s", "ex", T0, "call", 1, {}))
    assert start.state is not None and start.state.status == ExecutionStatus.RUNNING
    assert of_type(start.outgoing, AdmissionRequested) == []
    state, sent = settle(CALL, step(CALL, start.state, NodeCompleted("c", "ex", T0, "fetch", 1)))
    assert state.status == ExecutionStatus.COMPLETED
    assert of_type(sent, AdmissionReleased) == []


def test_completing_releases_the_slot() -> None:
    running = step(CALL, queued().state, AdmitExecution("ex/admit", "ex", T0)).state
    state, sent = settle(CALL, step(CALL, running, NodeCompleted("c", "ex", T0, "fetch", 1)))
    assert state.status == ExecutionStatus.COMPLETED
    assert [(r.execution_id, r.key) for r in of_type(sent, AdmissionReleased)] == [("ex", KEY)]


def test_timing_out_releases_the_slot() -> None:
    running = step(CALL, queued().state, AdmitExecution("ex/admit", "ex", T0)).state
    assert running is not None
    due = running.timers[EXECUTION_TIMER]
    timed_out = step(CALL, running, TimerFired("t", "ex", due, EXECUTION_TIMER))
    assert timed_out.state is not None and timed_out.state.status == ExecutionStatus.FAILED
    assert len(of_type(timed_out.outgoing, AdmissionReleased)) == 1


def test_a_cancel_while_queued_gives_up_its_place_and_a_late_admission_gives_it_back() -> None:
    cancelled = step(CALL, queued().state, CancelExecution("x", "ex", T0 + 1, "no", "ops"))
    assert cancelled.state is not None and cancelled.state.status == ExecutionStatus.CANCELLED
    assert len(of_type(cancelled.outgoing, AdmissionReleased)) == 1
    assert of_type(cancelled.outgoing, TaskRequest) == []
    # Admitted before the release reached the queue: the slot goes back at once.
    late = step(CALL, cancelled.state, AdmitExecution("ex/admit", "ex", T0 + 2))
    assert late.ignored is None and late.state == cancelled.state
    assert [type(o) for o in late.outgoing] == [AdmissionReleased]
