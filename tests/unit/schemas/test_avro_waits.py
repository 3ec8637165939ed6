"""Avro for waits and timers: the new records round-trip, and v1 records still decode."""

from __future__ import annotations

from typing import Any

import pytest
from avro_history import history_schema, written_with

from braidflow.engine import (
    AwaitEvent,
    CancelExecution,
    EventArrived,
    NodeCompleted,
    NodeError,
    NodeFailed,
    RunNode,
    StartExecution,
    TimerFired,
    Transition,
)
from braidflow.engine.state import ExecutionState, JoinState, NodeRun
from braidflow.schemas import (
    STORE,
    TRANSITION,
    Codec,
    OutboxEntry,
    RecordKind,
    SingleObjectFraming,
    StoredExecution,
    current_schema,
    decode_await,
    decode_state,
    decode_stored,
    decode_transition,
    encode_await,
    encode_state,
    encode_stored,
    encode_transition,
    fingerprint,
)

T0 = 1_750_000_000_000
EVENT = {
    "id": "ev-1",
    "type": "approval.given",
    "source": "/hr",
    "subject": "ex-1",
    "time": "2025-06-15T12:00:00Z",
    "data": {"who": "ada", "tags": ["é", 1, None], "ok": True},
}


@pytest.mark.parametrize(
    "transition",
    [
        EventArrived("t1", "ex-1", T0, "wait", EVENT),
        EventArrived("t2", "ex-1", T0, "wait", {}),
        TimerFired("t3", "ex-1", T0 + 1, "wait/1/timeout"),
    ],
    ids=["event", "empty-event", "timer"],
)
def test_the_new_transitions_round_trip(transition: Transition) -> None:
    assert decode_transition(encode_transition(transition)) == transition


@pytest.mark.parametrize(
    "registration",
    [
        AwaitEvent(
            "ex-1/wait/1/await",
            "ex-1",
            "approval",
            3,
            "wait",
            "approval.given",
            T0,
            expires_at=T0 + 7_200_000,
            context={"input": {"who": "ada"}, "nodes": {"ask": {"output": [1], "status": "x"}}},
        ),
        AwaitEvent("ex-1/wait/1/await", "ex-1", "approval", 3, "wait", "approval.given", T0),
        AwaitEvent("r", "ex-1", "approval", 3, "wait", "approval.given", T0, None, {}),
    ],
    ids=["expiring-with-context", "no-expiry-no-context", "empty-context"],
)
def test_wait_registrations_round_trip(registration: AwaitEvent) -> None:
    assert decode_await(encode_await(registration)) == registration


def waiting_state() -> ExecutionState:
    return ExecutionState(
        "ex-1",
        "approval",
        3,
        "running",
        T0,
        T0 + 9,
        input={"who": "ada"},
        nodes={
            "ask": NodeRun("ask", "completed", 1, None, {"id": "ex-1/ask"}, None, T0, T0),
            "wait": NodeRun("wait", "waiting", 1, {"type": "approval.given"}, started_at=T0 + 1),
            "other": NodeRun("other", "waiting", 1, {"type": "x.y"}, started_at=T0 + 2),
        },
        joins={"either": JoinState("either", dead=(4,))},
        timers={"wait/1/timeout": T0 + 7_200_001, "other/1/timeout": T0 + 60_002},
    )


def test_an_execution_state_with_a_waiting_node_and_timers_round_trips() -> None:
    state = waiting_state()
    decoded = decode_state(encode_state(state))
    assert decoded == state
    assert decoded.nodes["wait"].status == "waiting"
    assert decoded.timers == {"wait/1/timeout": T0 + 7_200_001, "other/1/timeout": T0 + 60_002}


def test_stored_executions_round_trip_with_outbox_topics_and_keys_set_and_unset() -> None:
    stored = StoredExecution(
        waiting_state(),
        (
            OutboxEntry("transition", "ex-1/wait/run", b"\xc3\x01abc"),
            OutboxEntry("await", "ex-1/wait/1/await", b"\x00\xff", key=b"approval.given"),
            OutboxEntry("publish", "ex-1/ask", b"{}", "events.approval", b"ex-1"),
            OutboxEntry("publish", "ex-1/tell", b"", topic="events.other"),
        ),
    )
    assert decode_stored(encode_stored(stored)) == stored


# -- records written with the v1 schemas in avro/history/


@pytest.mark.parametrize("name", ["Transition", "ExecutionState", "StoredExecution", "OutboxEntry"])
def test_each_v1_schema_is_an_older_version_the_shipped_store_knows(name: str) -> None:
    old = history_schema(name, 1)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


V1_TRANSITIONS = [
    StartExecution("t1", "ex-1", T0, "approval", 2, {"who": "ada"}, EVENT),
    RunNode("t2", "ex-1", T0, "wait"),
    NodeCompleted("t3", "ex-1", T0, "ask", 1, {"id": "ex-1/ask"}),
    NodeFailed("t4", "ex-1", T0, "ask", 2, NodeError("E", "boom", "ask")),
    CancelExecution("t5", "ex-1", T0, "operator asked"),
]


@pytest.mark.parametrize("transition", V1_TRANSITIONS, ids=lambda t: type(t).__name__)
def test_a_v1_transition_decodes_with_the_current_codec(transition: Transition) -> None:
    data = written_with("Transition", 1, TRANSITION.to_avro(transition))
    assert data[2:10] != encode_transition(transition)[2:10]
    assert decode_transition(data) == transition


def test_the_current_transition_union_appends_to_the_v1_branches() -> None:
    def branches(schema: dict[str, Any]) -> list[str]:
        (body,) = schema["fields"]
        return [b if isinstance(b, str) else b["name"] for b in body["type"]]

    old, new = (
        branches(history_schema("Transition", 1)),
        branches(current_schema(TRANSITION.schema_name)),
    )
    assert new[: len(old)] == old
    assert new[len(old) : len(old) + 2] == ["braidflow.EventArrived", "braidflow.TimerFired"]


V1_STATE = {
    "execution_id": "ex-1",
    "workflow_id": "approval",
    "workflow_version": 2,
    "status": "running",
    "started_at": T0,
    "updated_at": T0 + 5,
    "input": '{"who":"ada"}',
    "event": None,
    "output": None,
    "error": {"type": "E", "message": "boom", "node_id": "ask"},
    "completed_at": None,
    "nodes": [
        {
            "node_id": "ask",
            "status": "failed",
            "attempt": 1,
            "input": None,
            "output": None,
            "error": {"type": "E", "message": "boom", "node_id": "ask"},
            "started_at": T0,
            "completed_at": T0 + 5,
        },
        {
            "node_id": "work",
            "status": "running",
            "attempt": 1,
            "input": "[1,2]",
            "output": None,
            "error": None,
            "started_at": T0 + 1,
            "completed_at": None,
        },
    ],
    "joins": [{"node_id": "gather", "taken": [1], "dead": [0], "fired": False}],
}
V1_STATE_DECODED = ExecutionState(
    "ex-1",
    "approval",
    2,
    "running",
    T0,
    T0 + 5,
    input={"who": "ada"},
    error=NodeError("E", "boom", "ask"),
    nodes={
        "ask": NodeRun("ask", "failed", 1, None, None, NodeError("E", "boom", "ask"), T0, T0 + 5),
        "work": NodeRun("work", "running", 1, [1, 2], started_at=T0 + 1),
    },
    joins={"gather": JoinState("gather", (1,), (0,), False)},
)


def test_a_v1_execution_state_decodes_with_no_timers() -> None:
    decoded = decode_state(written_with("ExecutionState", 1, V1_STATE))
    assert decoded == V1_STATE_DECODED
    assert decoded.timers == {}


def test_a_v1_stored_execution_decodes_with_no_timers_and_no_outbox_topics_or_keys() -> None:
    record = {
        "state": V1_STATE,
        "outbox": [
            {"kind": "task", "id": "ex-1:work:1", "value": b"\xc3\x01task"},
            {"kind": "event", "id": "ex-1/ask/1/node.failed", "value": b"\xc3\x01event"},
        ],
    }
    decoded = decode_stored(written_with("StoredExecution", 1, record))
    assert decoded == StoredExecution(
        V1_STATE_DECODED,
        (
            OutboxEntry("task", "ex-1:work:1", b"\xc3\x01task", None, None),
            OutboxEntry("event", "ex-1/ask/1/node.failed", b"\xc3\x01event", None, None),
        ),
    )
    assert decoded.state.timers == {}


def test_a_v1_outbox_entry_reads_into_the_current_schema_with_no_topic_or_key() -> None:
    # Outbox entries travel inside stored executions; this reads one on its own.
    kind: RecordKind[dict[str, Any]] = RecordKind("braidflow.OutboxEntry", dict, dict)
    entries = Codec(kind, SingleObjectFraming(STORE))
    data = written_with("OutboxEntry", 1, {"kind": "task", "id": "k", "value": b"\x01\x02"})
    assert entries.decode(data) == {
        "kind": "task",
        "id": "k",
        "value": b"\x01\x02",
        "topic": None,
        "key": None,
        "traceparent": None,
    }
