"""Avro records of the foreach node: item fields, collected results, progress in the state,
and v3 records (written before foreach existed) read with the new defaults."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from avro_history import history_schema, written_with

from braidflow.engine import (
    ChildFinished,
    ItemError,
    ItemsCollected,
    NodeCompleted,
    NodeError,
    NodeFailed,
    ParentLink,
    StartExecution,
    TaskRequest,
    Transition,
)
from braidflow.engine.state import ExecutionState, ForeachProgress, NodeRun
from braidflow.schemas import (
    StoredExecution,
    decode_state,
    decode_stored,
    decode_task,
    decode_transition,
    encode_state,
    encode_task,
    encode_transition,
)
from braidflow.schemas.codec import STORE
from braidflow.schemas.records import EXECUTION_STATE, TASK_REQUEST, TRANSITION, _LargeTexts
from braidflow.schemas.store import current_schema, fingerprint

T0 = 1_795_000_000_000
BOOM = NodeError("ValueError", "boom", "each")

ITEM_TRANSITIONS: list[Transition] = [
    NodeCompleted("t1", "ex", T0, "each", 1, {"score": 3}, 7),
    NodeFailed("t2", "ex", T0, "each", 2, BOOM, 0),
    ChildFinished("t3", "ex", T0, "each", "ex.each[4]", "completed", [1], None, 4),
    StartExecution("t4", "ex.each[4]", T0, "w", 0, 1, None, ParentLink("ex", "p", "each", 1, None, 4)),
    ItemsCollected("t5", "ex", T0, "each", 1, (1, None, {"a": [2]}), (ItemError(1, "E", "no"),)),
    ItemsCollected("t6", "ex", T0, "each", 1, (), (), NodeError("ResultsTooLarge", "big", "each")),
]  # fmt: skip


@pytest.mark.parametrize("transition", ITEM_TRANSITIONS, ids=lambda t: t.id)
def test_item_transitions_round_trip(transition: Transition) -> None:
    assert decode_transition(encode_transition(transition)) == transition


def test_a_task_request_for_an_item_round_trips() -> None:
    task = TaskRequest("ex", "w", "each", "task", 1, "ex:each:1:3", T0, {"n": 3}, "h", 500, 3)
    assert decode_task(encode_task(task)) == task


def a_state() -> ExecutionState:
    progress = ForeachProgress(
        "each", 2, 250, 130, (104, 129), ((100, {"x": 1}), (101, None)), (ItemError(102, "E", "m"),), 1, 4
    )  # fmt: skip
    return ExecutionState(
        "ex",
        "w",
        1,
        "running",
        T0,
        T0 + 1,
        nodes={"each": NodeRun("each", "running", 2, list(range(250)), started_at=T0)},
        children={"each[104]": "ex.each.2[104]"},
        foreach={"each": progress},
    )


def test_a_state_with_foreach_progress_round_trips() -> None:
    state = a_state()
    assert decode_state(encode_state(state)) == state


def written_with_v3(name: str, record: dict[str, Any]) -> bytes:
    return written_with(name, 3, record)


@pytest.mark.parametrize("name", ["Transition", "TaskRequest", "ExecutionState", "StoredExecution"])
def test_each_v3_schema_is_an_older_version_the_shipped_store_knows(name: str) -> None:
    old = history_schema(name, 3)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


def test_v3_records_read_as_no_item_and_no_foreach() -> None:
    completed = NodeCompleted("t", "ex", T0, "n", 1, {"ok": True})
    assert (
        decode_transition(written_with_v3("Transition", TRANSITION.to_avro(completed))) == completed
    )
    task = TaskRequest("ex", "w", "n", "task", 1, "k", T0, None, "h")
    assert decode_task(written_with_v3("TaskRequest", TASK_REQUEST.to_avro(task))) == task
    state = ExecutionState("ex", "w", 1, "running", T0, T0)
    assert decode_state(written_with_v3("ExecutionState", EXECUTION_STATE.to_avro(state))) == state
    stored = {"state": EXECUTION_STATE.to_avro(state), "outbox": []}
    assert decode_stored(written_with_v3("StoredExecution", stored)) == StoredExecution(state, ())


def test_the_text_of_a_large_state_value_is_reused_only_for_the_same_object() -> None:
    texts = _LargeTexts(capacity=2)
    items = list(range(1000))
    first = texts.encode(items)
    assert texts.encode(items) is first
    equal_copy = list(items)
    assert texts.encode(equal_copy) == first and texts.encode(equal_copy) is not first
    other = list(range(1000, 2000))
    assert json.loads(texts.encode(other)) == other
    # The oldest entry left when a third came in: its text is made again, and still right.
    assert texts.encode(items) == first and texts.encode(items) is not first
    small = [1, 2]
    assert texts.encode(small) == "[1,2]"


def test_a_state_sharing_a_large_list_between_steps_encodes_it_right_each_time() -> None:
    items = list(range(5000))
    state = ExecutionState("ex", "w", 1, "running", T0, T0, input={"items": items})
    first = decode_state(encode_state(state))
    second = decode_state(encode_state(replace(state, updated_at=T0 + 1)))
    assert first.input == second.input == {"items": items}
