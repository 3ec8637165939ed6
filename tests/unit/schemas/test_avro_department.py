"""Avro records of the department context: starts and states written before it existed
(StartExecution v3, Transition v5, ExecutionState and StoredExecution v6) read with none."""

from __future__ import annotations

import pytest
from avro_history import history_schema, written_with

from braidflow.engine import StartExecution
from braidflow.engine.state import ExecutionState
from braidflow.schemas import StoredExecution, decode_state, decode_stored, decode_transition
from braidflow.schemas.codec import STORE
from braidflow.schemas.records import EXECUTION_STATE
from braidflow.schemas.store import current_schema, fingerprint

T0 = 1_795_000_000_000


@pytest.mark.parametrize(
    ("name", "version"),
    [("StartExecution", 3), ("Transition", 5), ("ExecutionState", 6), ("StoredExecution", 6)],
)
def test_each_schema_before_the_context_is_one_the_shipped_store_knows(
    name: str, version: int
) -> None:
    old = history_schema(name, version)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


def test_older_starts_and_states_read_with_no_department_context() -> None:
    body = {
        "id": "s",
        "execution_id": "ex",
        "at": T0,
        "workflow_id": "w",
        "workflow_version": 1,
        "input": None,
        "event": None,
        "parent": None,
    }
    start = decode_transition(written_with("Transition", 5, {"body": body}))
    assert start == StartExecution("s", "ex", T0, "w", 1)
    state = ExecutionState("ex", "w", 1, "running", T0, T0)
    avro = {k: v for k, v in EXECUTION_STATE.to_avro(state).items() if k != "dept"}
    assert decode_state(written_with("ExecutionState", 6, avro)) == state
    stored = {"state": avro, "outbox": []}
    assert decode_stored(written_with("StoredExecution", 6, stored)) == StoredExecution(state, ())
