"""Avro records of department caps: the admissions topic's requests and releases, the
AdmitExecution transition, and states written before the admission key existed
(Transition v6, ExecutionState and StoredExecution v7) read with none; requests written
before traces reached admissions (Admission v1) read with no traceparent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from avro_history import history_schema, written_with

from braidflow.engine import AdmissionReleased, AdmissionRequested, AdmitExecution
from braidflow.engine.state import ExecutionState, ExecutionStatus
from braidflow.schemas import (
    StoredExecution,
    decode_state,
    decode_stored,
    decode_transition,
    encode_state,
    encode_transition,
)
from braidflow.schemas.codec import STORE, decode_admission, encode_admission
from braidflow.schemas.records import ADMISSION, EXECUTION_STATE
from braidflow.schemas.store import current_schema, fingerprint

T0 = 1_795_000_000_000
GIVEN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("name", "version"),
    [("Transition", 6), ("ExecutionState", 7), ("StoredExecution", 7), ("Admission", 1)],
)
def test_each_schema_before_the_admission_key_or_its_trace_is_one_the_shipped_store_knows(
    name: str, version: int
) -> None:
    old = history_schema(name, version)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


def test_older_states_read_with_no_admission_key() -> None:
    state = ExecutionState("ex", "w", 1, "running", T0, T0, dept={"a": 1})
    avro = {k: v for k, v in EXECUTION_STATE.to_avro(state).items() if k != "admission"}
    assert decode_state(written_with("ExecutionState", 7, avro)) == state
    stored = {"state": avro, "outbox": []}
    assert decode_stored(written_with("StoredExecution", 7, stored)) == StoredExecution(state, ())


def test_a_queued_state_and_an_admit_round_trip() -> None:
    state = ExecutionState(
        "ex", "w", 1, ExecutionStatus.QUEUED, T0, T0, admission="default/support"
    )
    assert decode_state(encode_state(state)) == state
    admit = AdmitExecution("ex/admit", "ex", T0)
    assert decode_transition(encode_transition(admit)) == admit


@pytest.mark.parametrize("kind", [AdmissionRequested, AdmissionReleased])
def test_requests_and_releases_round_trip(kind: type) -> None:
    record = kind("ex/queued", "ex", T0, "default/support")
    assert decode_admission(encode_admission(record)) == record


def test_a_request_keeps_its_traceparent_and_one_written_before_reads_none() -> None:
    request = AdmissionRequested("ex/queued", "ex", T0, "default/support", GIVEN)
    assert decode_admission(encode_admission(request)) == request
    before = ADMISSION.to_avro(replace(request, traceparent=None))
    del before["body"][1]["traceparent"]
    old = written_with("Admission", 1, before)
    assert decode_admission(old) == replace(request, traceparent=None)


def test_a_release_keeps_what_its_execution_spent_and_one_written_before_reads_nothing() -> None:
    release = AdmissionReleased("ex/released", "ex", T0, "default/support", 0.125)
    assert decode_admission(encode_admission(release)) == release
    assert STORE.get(fingerprint(history_schema("Admission", 2))) is not None
    before = ADMISSION.to_avro(release)
    del before["body"][1]["spent"]
    assert decode_admission(written_with("Admission", 2, before)) == replace(release, spent=0.0)
