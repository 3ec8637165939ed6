"""Avro records of the loop node: its progress in the state, and v5 states (written before
loops existed) read with no loop in flight."""

from __future__ import annotations

import pytest
from avro_history import history_schema, written_with

from braidflow.engine.state import ExecutionState, LoopProgress, NodeRun
from braidflow.schemas import StoredExecution, decode_state, decode_stored, encode_state
from braidflow.schemas.codec import STORE
from braidflow.schemas.records import EXECUTION_STATE
from braidflow.schemas.store import current_schema, fingerprint

T0 = 1_795_000_000_000


def test_a_state_with_a_loop_in_flight_round_trips() -> None:
    state = ExecutionState(
        "ex",
        "w",
        1,
        "running",
        T0,
        T0 + 1,
        nodes={"poll": NodeRun("poll", "waiting", 1, started_at=T0)},
        children={"poll": "ex.poll[3]"},
        loops={"poll": LoopProgress("poll", 4)},
    )
    assert decode_state(encode_state(state)) == state


@pytest.mark.parametrize("name", ["ExecutionState", "StoredExecution"])
def test_each_v5_schema_is_an_older_version_the_shipped_store_knows(name: str) -> None:
    old = history_schema(name, 5)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


def test_v5_records_read_as_no_loop_in_flight() -> None:
    state = ExecutionState("ex", "w", 1, "running", T0, T0, children={"sub": "ex.sub"})
    assert decode_state(written_with("ExecutionState", 5, EXECUTION_STATE.to_avro(state))) == state
    stored = {"state": EXECUTION_STATE.to_avro(state), "outbox": []}
    assert decode_stored(written_with("StoredExecution", 5, stored)) == StoredExecution(state, ())
