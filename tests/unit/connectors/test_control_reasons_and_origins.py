"""Issue 14: a reason kept with pause and resume, what started an execution, and the
per-workflow execution metrics, driven with plain data."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from avro_history import history_schema, written_with
from engine_driver import applied, of_type, workflow
from prometheus_client import REGISTRY

from braidflow.connectors.api import execution_view
from braidflow.connectors.metrics import observe_step
from braidflow.connectors.started_by import started_by
from braidflow.engine import (
    CancelExecution,
    ExecutionState,
    NodeCompleted,
    ParentLink,
    PauseExecution,
    ResumeExecution,
    RunNode,
    StartExecution,
    TimerFired,
    Transition,
    step,
)
from braidflow.engine.state import ControlAction
from braidflow.schemas import (
    EXECUTION_STATE,
    STORE,
    TRANSITION,
    StoredExecution,
    current_schema,
    decode_state,
    decode_stored,
    decode_transition,
    encode_state,
    encode_transition,
    fingerprint,
)
from braidflow.topology import Workflow

T0 = 1_750_000_000_000
EX = "ex-14"
CHAIN = """
id: chain14
nodes:
  - {id: a, type: task, params: {handler: h}}
  - {id: done, type: end, params: {output: {ok: true}}}
edges:
  - {from: a, to: done}
"""
TICKET = {
    "id": "evt-7",
    "type": "ticket.opened",
    "source": "/helpdesk",
    "subject": "T-7",
    "time": "2026-12-05T18:00:00Z",
    "specversion": "1.0",
    "data": {"ticket_id": "T-7"},
}


def started(wf_id: str = "chain14", event: dict[str, Any] | None = None) -> ExecutionState:
    result = step(workflow(CHAIN.replace("chain14", wf_id)), None, start(wf_id, event))
    assert result.state is not None
    return result.state


def start(wf_id: str = "chain14", event: dict[str, Any] | None = None) -> StartExecution:
    return StartExecution(f"{EX}/start", EX, T0, wf_id, 1, {}, event)


# -- pause and resume with a reason


def test_pause_and_resume_keep_their_reason_in_the_control_record_and_events() -> None:
    wf = workflow(CHAIN)
    state = started()
    paused = applied(wf, state, PauseExecution("p", EX, T0 + 1, "ana", "audit of order 7"))
    assert paused.state is not None
    [event] = [o for o in paused.outgoing if getattr(o, "type", "") == "workflow.paused"]
    assert event.data == {"by": "ana", "reason": "audit of order 7"}
    resumed = applied(wf, paused.state, ResumeExecution("r", EX, T0 + 2, "bob", "audit done"))
    assert resumed.state is not None
    assert resumed.state.control == (
        ControlAction("pause", "ana", T0 + 1, reason="audit of order 7"),
        ControlAction("resume", "bob", T0 + 2, reason="audit done"),
    )
    view = execution_view(resumed.state, wf)
    assert [(c["action"], c["reason"]) for c in view["control"]] == [
        ("pause", "audit of order 7"),
        ("resume", "audit done"),
    ]


def test_a_cancel_keeps_its_reason_in_the_control_record() -> None:
    result = applied(workflow(CHAIN), started(), CancelExecution("c", EX, T0 + 1, "dup", "ana"))
    assert result.state is not None
    assert result.state.control == (ControlAction("cancel", "ana", T0 + 1, reason="dup"),)


def test_the_reasons_round_trip_through_avro() -> None:
    pause = PauseExecution("p", EX, T0, "ana", "audit")
    resume = ResumeExecution("r", EX, T0, "bob", "done")
    assert decode_transition(encode_transition(pause)) == pause
    assert decode_transition(encode_transition(resume)) == resume
    state = ExecutionState(
        EX, "w", 1, "running", T0, T0, control=(ControlAction("pause", "ana", T0, None, "x"),)
    )
    assert decode_state(encode_state(state)) == state


@pytest.mark.parametrize("name", ["Transition", "ExecutionState", "StoredExecution"])
def test_each_v4_schema_is_an_older_version_the_shipped_store_knows(name: str) -> None:
    old = history_schema(name, 4)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


def test_v4_records_read_as_no_reason() -> None:
    # The v4 writer has no `reason` field: what an older worker wrote has none.
    pause = PauseExecution("p", EX, T0, "ana", "audit")
    written = written_with("Transition", 4, TRANSITION.to_avro(pause))
    assert decode_transition(written) == PauseExecution("p", EX, T0, "ana")
    state = ExecutionState(
        EX, "w", 1, "running", T0, T0, control=(ControlAction("pause", "a", T0),)
    )
    row = EXECUTION_STATE.to_avro(state)
    assert decode_state(written_with("ExecutionState", 4, row)) == state
    stored = written_with("StoredExecution", 4, {"state": row, "outbox": []})
    assert decode_stored(stored) == StoredExecution(state, ())


# -- what started an execution


def test_an_execution_started_by_an_event_names_it() -> None:
    state = started(event=TICKET)
    assert started_by(state) == {
        "kind": "event",
        "id": "evt-7",
        "type": "ticket.opened",
        "source": "/helpdesk",
        "subject": "T-7",
        "time": "2026-12-05T18:00:00Z",
    }
    assert execution_view(state, workflow(CHAIN))["started_by"]["id"] == "evt-7"


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [("braidflow.webhook.deploys", "webhook"), ("braidflow.schedule", "schedule")],
)
def test_webhook_calls_and_schedule_slots_are_told_apart(event_type: str, kind: str) -> None:
    assert started_by(started(event={**TICKET, "type": event_type}))["kind"] == kind


def test_an_execution_started_through_the_api_or_by_a_parent_says_so() -> None:
    assert started_by(started()) == {"kind": "api"}
    child = ExecutionState(
        EX, "w", 1, "running", T0, T0, parent=ParentLink("ex-parent", "outer", "call", 1)
    )
    assert started_by(child) == {
        "kind": "parent",
        "execution_id": "ex-parent",
        "workflow_id": "outer",
        "node_id": "call",
    }


# -- per-workflow metrics


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def observed(wf: Workflow, state: ExecutionState | None, t: Transition) -> ExecutionState:
    """Apply `t` and the RunNodes it sends as the orchestrator does: each step observed,
    and each transition delivered twice."""
    pending = [t]
    while pending:
        transition = pending.pop(0)
        result = step(wf, state, transition)
        observe_step(transition, result, 0.0)
        state = result.state
        observe_step(transition, step(wf, state, transition), 0.0)
        pending.extend(of_type(result.outgoing, RunNode))
    assert state is not None
    return state


def test_each_execution_is_counted_once_by_workflow_even_when_transitions_come_again() -> None:
    wf = workflow(CHAIN.replace("chain14", "metered14"))
    ended = {"workflow": "metered14", "status": "completed"}
    before = (
        sample("braidflow_executions_started_total", workflow="metered14"),
        sample("braidflow_executions_ended_total", **ended),
        sample("braidflow_execution_duration_seconds_count", **ended),
        sample("braidflow_execution_duration_seconds_sum", **ended),
    )
    state = observed(wf, None, start("metered14"))
    state = observed(wf, state, NodeCompleted(f"{EX}/a/1/done", EX, T0 + 2500, "a", 1, {}))
    assert state.status == "completed"
    after = (
        sample("braidflow_executions_started_total", workflow="metered14"),
        sample("braidflow_executions_ended_total", **ended),
        sample("braidflow_execution_duration_seconds_count", **ended),
        sample("braidflow_execution_duration_seconds_sum", **ended),
    )
    assert after[:3] == (before[0] + 1, before[1] + 1, before[2] + 1)
    assert after[3] == pytest.approx(before[3] + 2.5)


def test_an_execution_that_fails_at_its_start_is_counted_started_and_failed() -> None:
    wf = workflow(
        CHAIN.replace("chain14", "refused14").replace(
            "nodes:", "input: {type: object, required: [sku]}\nnodes:"
        )
    )
    failed = {"workflow": "refused14", "status": "failed"}
    before = (
        sample("braidflow_executions_started_total", workflow="refused14"),
        sample("braidflow_executions_ended_total", **failed),
    )
    assert observed(wf, None, start("refused14")).status == "failed"
    assert (
        sample("braidflow_executions_started_total", workflow="refused14"),
        sample("braidflow_executions_ended_total", **failed),
    ) == (before[0] + 1, before[1] + 1)


def test_fired_timers_are_counted_by_their_kind_applied_and_ignored() -> None:
    # A timer fired again after it was applied (a resend) shows as an ignored one.
    fired = TimerFired("ex/timer/nap/1/delay/5", "ex", 5, "nap/1/delay")
    labels = {"kind": "TimerFired"}
    before = [
        sample("braidflow_transitions_total", **labels, outcome=o) for o in ("applied", "ignored")
    ]

    observe_step(fired, SimpleNamespace(ignored=None), 0.0)
    observe_step(fired, SimpleNamespace(ignored="timer 'nap/1/delay' is not pending"), 0.0)

    after = [
        sample("braidflow_transitions_total", **labels, outcome=o) for o in ("applied", "ignored")
    ]
    assert after == [before[0] + 1, before[1] + 1]
