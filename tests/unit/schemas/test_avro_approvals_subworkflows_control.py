"""Avro for approvals, subworkflows, control and dead letters: round trips, and older records."""

from __future__ import annotations

from typing import Any

import pytest
from avro_history import history_schema, written_with

from braidflow.engine import (
    ApprovalDecided,
    CancelExecution,
    ChildFinished,
    ControlAction,
    EventArrived,
    NodeCompleted,
    NodeError,
    NodeFailed,
    ParentLink,
    PauseExecution,
    RedriveNode,
    ResumeExecution,
    RunNode,
    StartExecution,
    TimerFired,
    Transition,
)
from braidflow.engine.state import ExecutionState, JoinState, NodeRun
from braidflow.schemas import (
    STORE,
    TRANSITION,
    OutboxEntry,
    StoredExecution,
    current_schema,
    decode_state,
    decode_stored,
    decode_transition,
    encode_state,
    encode_stored,
    encode_transition,
    fingerprint,
)

T0 = 1_750_000_000_000
CONTEXT = {"input": {"who": "ada"}, "vars": {"team": "blue"}, "event": None}
LINK = ParentLink("parent-1", "caller", "call", 2, CONTEXT)
BOOM = NodeError("ValueError", "boom", "work")

NEW_TRANSITIONS: list[Transition] = [
    ApprovalDecided("t1", "ex-1", T0, "ask", "d-1", "approve", "ada", "ok", {"days": [1, 2]}),
    ApprovalDecided("t2", "ex-1", T0, "ask", "d-2", "reject", "bob"),
    ChildFinished("t3", "ex-1", T0, "call", "ex-1.call", "completed", {"r": 1}),
    ChildFinished("t4", "ex-1", T0, "call", "ex-1.call", "failed", error=BOOM),
    PauseExecution("t5", "ex-1", T0, "ops"),
    PauseExecution("t6", "ex-1", T0),
    ResumeExecution("t7", "ex-1", T0, "ops"),
    RedriveNode("t8", "ex-1", T0, "work", "ops", {"patched": True}),
    RedriveNode("t9", "ex-1", T0, "work"),
    StartExecution("t10", "ex-1.call", T0, "callee", 0, {"who": "ada"}, None, LINK),
    StartExecution("t11", "ex-1.call", T0, "callee", 0, None, None, ParentLink("p", "w", "n", 1)),
    CancelExecution("t12", "ex-1", T0, "too slow", "ops"),
]


@pytest.mark.parametrize("transition", NEW_TRANSITIONS, ids=lambda t: f"{type(t).__name__}-{t.id}")
def test_the_new_and_extended_transitions_round_trip(transition: Transition) -> None:
    assert decode_transition(encode_transition(transition)) == transition


def a_state() -> ExecutionState:
    errors = (NodeError("E", "first", "work"), NodeError("Timeout", "second", "work"))
    return ExecutionState(
        "ex-1.call",
        "callee",
        4,
        "parked",
        T0,
        T0 + 9,
        input={"who": "ada"},
        error=errors[-1],
        nodes={
            "work": NodeRun("work", "failed", 2, {"n": 1}, None, errors[-1], T0, T0 + 5, errors),
            "ask": NodeRun("ask", "waiting", 1, {"message": "ok?"}, started_at=T0 + 1),
        },
        joins={"both": JoinState("both", (1,), (), False)},
        timers={"ask/1/timeout": T0 + 60_000},
        paused=True,
        held=(
            NodeCompleted("h1", "ex-1.call", T0 + 6, "work", 2, [1]),
            TimerFired("h2", "ex-1.call", T0 + 7, "ask/1/timeout"),
            ApprovalDecided("h3", "ex-1.call", T0 + 8, "ask", "d-1", "approve", "ada"),
        ),
        parent=LINK,
        children={"sub": "ex-1.call.sub", "other": "ex-1.call.other.2"},
        control=(
            ControlAction("pause", "ops", T0 + 5),
            ControlAction("redrive", "ops", T0 + 6, "work"),
        ),
    )


def test_an_execution_state_with_every_new_field_set_round_trips() -> None:
    state = a_state()
    assert decode_state(encode_state(state)) == state


def test_a_stored_execution_with_held_transitions_round_trips() -> None:
    stored = StoredExecution(a_state(), (OutboxEntry("transition", "x", b"\x01"),))
    assert decode_stored(encode_stored(stored)) == stored


@pytest.mark.parametrize(
    "name",
    ["Transition", "ExecutionState", "StoredExecution", "NodeRun", "StartExecution", "CancelExecution"],
)  # fmt: skip
def test_each_v2_schema_is_an_older_version_the_shipped_store_knows(name: str) -> None:
    old = history_schema(name, 2)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


def test_the_transition_union_appends_the_new_kinds_to_the_v2_branches() -> None:
    def branches(schema: dict[str, Any]) -> list[str]:
        (body,) = schema["fields"]
        return [b if isinstance(b, str) else b["name"] for b in body["type"]]

    old, new = (
        branches(history_schema("Transition", 2)),
        branches(current_schema("braidflow.Transition")),
    )
    assert new[: len(old)] == old
    assert new[len(old) :] == [
        "braidflow.ApprovalDecided",
        "braidflow.ChildFinished",
        "braidflow.PauseExecution",
        "braidflow.ResumeExecution",
        "braidflow.RedriveNode",
        "braidflow.ItemsCollected",
        "braidflow.AdmitExecution",
    ]


V2_TRANSITIONS: list[tuple[dict[str, Any], Transition]] = [
    (
        {"body": ("braidflow.StartExecution", {"id": "t1", "execution_id": "ex-1", "at": T0,
                  "workflow_id": "w", "workflow_version": 3, "input": "[1]", "event": None})},
        StartExecution("t1", "ex-1", T0, "w", 3, [1]),
    ),
    (
        {"body": ("braidflow.CancelExecution", {"id": "t2", "execution_id": "ex-1", "at": T0,
                  "reason": "stop"})},
        CancelExecution("t2", "ex-1", T0, "stop", ""),
    ),
    (
        {"body": ("braidflow.TimerFired", {"id": "t3", "execution_id": "ex-1", "at": T0,
                  "timer_id": "wait/1/timeout"})},
        TimerFired("t3", "ex-1", T0, "wait/1/timeout"),
    ),
    (
        {"body": ("braidflow.EventArrived", {"id": "t4", "execution_id": "ex-1", "at": T0,
                  "node_id": "wait", "event": "{}"})},
        EventArrived("t4", "ex-1", T0, "wait", {}),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("record", "expected"), V2_TRANSITIONS, ids=lambda v: str(v)[:30])
def test_a_v2_transition_decodes_with_no_parent_and_no_canceller(
    record: dict[str, Any], expected: Transition
) -> None:
    assert decode_transition(written_with("Transition", 2, record)) == expected


V2_NODE = {
    "node_id": "work",
    "status": "failed",
    "attempt": 1,
    "input": None,
    "output": None,
    "error": {"type": "E", "message": "boom", "node_id": "work"},
    "started_at": T0,
    "completed_at": T0 + 5,
}
V2_STATE = {
    "execution_id": "ex-1",
    "workflow_id": "w",
    "workflow_version": 2,
    "status": "failed",
    "started_at": T0,
    "updated_at": T0 + 5,
    "input": None,
    "event": None,
    "output": None,
    "error": {"type": "E", "message": "boom", "node_id": "work"},
    "completed_at": T0 + 5,
    "nodes": [V2_NODE],
    "joins": [],
    "timers": {"x/1/timeout": T0 + 9},
}
V2_STATE_DECODED = ExecutionState(
    "ex-1",
    "w",
    2,
    "failed",
    T0,
    T0 + 5,
    error=NodeError("E", "boom", "work"),
    completed_at=T0 + 5,
    nodes={"work": NodeRun("work", "failed", 1, None, None, NodeError("E", "boom", "work"), T0, T0 + 5)},
    timers={"x/1/timeout": T0 + 9},
)  # fmt: skip


def test_a_v2_execution_state_decodes_unpaused_with_no_children_control_or_node_errors() -> None:
    decoded = decode_state(written_with("ExecutionState", 2, V2_STATE))
    assert decoded == V2_STATE_DECODED
    assert (decoded.paused, decoded.held, decoded.parent, decoded.children, decoded.control) == (
        False,
        (),
        None,
        {},
        (),
    )
    assert decoded.nodes["work"].errors == ()


def test_a_v2_stored_execution_decodes_too() -> None:
    record = {
        "state": V2_STATE,
        "outbox": [{"kind": "task", "id": "k", "value": b"v", "topic": None, "key": None}],
    }
    decoded = decode_stored(written_with("StoredExecution", 2, record))
    assert decoded == StoredExecution(V2_STATE_DECODED, (OutboxEntry("task", "k", b"v"),))


def test_a_v1_transition_still_decodes_with_the_new_defaults() -> None:
    record = TRANSITION.to_avro(RunNode("t", "ex-1", T0, "n"))
    assert decode_transition(written_with("Transition", 1, record)) == RunNode("t", "ex-1", T0, "n")
    failed = NodeFailed("t", "ex-1", T0, "n", 2, BOOM)
    assert decode_transition(written_with("Transition", 1, TRANSITION.to_avro(failed))) == failed
