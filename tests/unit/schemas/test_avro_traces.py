"""Avro records of traces: records written before traces (StartExecution v5, Transition v7,
ExecutionState and StoredExecution v8, TaskRequest v5, OutboxEntry v2) read with no
traceparent; records with one keep it through encoding."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from avro_history import history_schema, written_with

from braidflow.engine import AwaitEvent, StartExecution, TaskRequest
from braidflow.engine.state import ExecutionState
from braidflow.schemas import (
    OutboxEntry,
    StoredExecution,
    decode_await,
    decode_state,
    decode_stored,
    decode_task,
    decode_transition,
    encode_await,
    encode_state,
    encode_stored,
    encode_task,
    encode_transition,
)
from braidflow.schemas.codec import STORE
from braidflow.schemas.records import (
    AWAIT_EVENT,
    EXECUTION_STATE,
    STORED_EXECUTION,
    TASK_REQUEST,
    TRANSITION,
)
from braidflow.schemas.store import current_schema, fingerprint
from braidflow.streams.waits import decode_waits

T0 = 1_795_000_000_000
GIVEN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("StartExecution", 5),
        ("Transition", 7),
        ("ExecutionState", 8),
        ("StoredExecution", 8),
        ("TaskRequest", 5),
        ("OutboxEntry", 2),
        ("AwaitEvent", 2),
    ],
)
def test_each_schema_before_traces_is_one_the_shipped_store_knows(name: str, version: int) -> None:
    old = history_schema(name, version)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


def _without(record: object) -> object:
    """`record` (an Avro dict, as the codec makes it) without any `traceparent`, at any depth."""
    if isinstance(record, dict):
        return {k: _without(v) for k, v in record.items() if k != "traceparent"}
    if isinstance(record, list):
        return [_without(v) for v in record]
    if isinstance(record, tuple):
        return tuple(_without(v) for v in record)
    return record


def test_records_written_before_traces_read_with_no_traceparent() -> None:
    start = StartExecution("s", "ex", T0, "w", 1, {"a": 1})
    old = written_with("Transition", 7, _without(TRANSITION.to_avro(start)))  # type: ignore[arg-type]
    assert decode_transition(old) == start
    state = ExecutionState("ex", "w", 1, "running", T0, T0, held=(start,))
    old_state = written_with("ExecutionState", 8, _without(EXECUTION_STATE.to_avro(state)))  # type: ignore[arg-type]
    assert decode_state(old_state) == state
    task = TaskRequest("ex", "w", "n", "task", 1, "k", T0)
    old_task = written_with("TaskRequest", 5, _without(TASK_REQUEST.to_avro(task)))  # type: ignore[arg-type]
    assert decode_task(old_task) == task
    stored = StoredExecution(state, (OutboxEntry("task", "k", b"\x01"),))
    old_stored = written_with("StoredExecution", 8, _without(STORED_EXECUTION.to_avro(stored)))  # type: ignore[arg-type]
    assert decode_stored(old_stored) == stored


def test_a_traceparent_survives_encoding() -> None:
    start = StartExecution("s", "ex", T0, "w", 1, traceparent=GIVEN)
    assert decode_transition(encode_transition(start)) == start
    state = ExecutionState("ex", "w", 1, "running", T0, T0, traceparent=GIVEN)
    assert decode_state(encode_state(state)) == state
    task = TaskRequest("ex", "w", "n", "task", 1, "k", T0, traceparent=GIVEN)
    assert decode_task(encode_task(task)) == task
    stored = StoredExecution(state, (OutboxEntry("task", "k", b"\x01", traceparent=GIVEN),))
    assert decode_stored(encode_stored(stored)) == stored


def test_a_wait_registration_keeps_its_traceparent_and_one_from_before_reads_none() -> None:
    registration = AwaitEvent("r", "ex", "w", 1, "wait", "told", T0, traceparent=GIVEN)
    assert decode_await(encode_await(registration)) == registration
    before = AWAIT_EVENT.to_avro(replace(registration, traceparent=None))
    del before["traceparent"]
    old = written_with("AwaitEvent", 2, before)
    assert decode_await(old) == replace(registration, traceparent=None)
    # A waits row kept from before has registrations without the field at all.
    row = json.dumps({"waiting": [before], "kept": []}).encode()
    assert decode_waits(row).waiting == (replace(registration, traceparent=None),)
