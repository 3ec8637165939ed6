"""A task request read without fastavro: the request fastavro reads, a CodecError where
fastavro fails, and records of an older schema still read through fastavro."""

from __future__ import annotations

from avro_history import written_with
from hypothesis import given, settings
from hypothesis import strategies as st

from braidflow.engine import TaskRequest
from braidflow.schemas import CodecError, decode_task, encode_task
from braidflow.schemas.codec import _task_requests
from tests.unit.damaged_bytes import assert_read_as_fastavro, damage, outcome
from tests.unit.schemas.test_task_writing import REQUESTS

HEADER = 10


def fastavro_read(data: bytes) -> TaskRequest | CodecError:
    return outcome(_task_requests.decode, data)


def read(data: bytes) -> TaskRequest | CodecError:
    return outcome(decode_task, data)


@settings(max_examples=400, deadline=None)
@given(REQUESTS)
def test_a_task_request_is_read_as_fastavro_reads_it(task: TaskRequest) -> None:
    data = encode_task(task)
    assert decode_task(data) == _task_requests.decode(data) == task


@settings(max_examples=400, deadline=None)
@given(REQUESTS, st.data())
def test_damaged_bytes_fail_where_fastavro_fails(task: TaskRequest, draw: st.DataObject) -> None:
    data = damage(encode_task(task), HEADER, draw)
    assert_read_as_fastavro(fastavro_read(data), read(data))


def test_a_record_left_over_or_cut_short_is_a_codec_error() -> None:
    data = encode_task(TaskRequest("e1", "wf", "a", "task", 1, "e1:a:1", 5, {"n": 1}, "h"))
    for damaged in (data + b"\x00", data[:-1], data[: HEADER + 3]):
        assert isinstance(read(damaged), CodecError)
        assert isinstance(fastavro_read(damaged), CodecError)


def test_a_request_written_before_traces_still_reads_through_fastavro() -> None:
    old = {
        "execution_id": "e1",
        "workflow_id": "wf",
        "node_id": "a",
        "kind": "task",
        "attempt": 2,
        "idempotency_key": "e1:a:2",
        "at": 5,
        "input": '{"n":1}',
        "handler": "h",
        "timeout_ms": None,
        "item": None,
        "tenant": "acme",
        "department": "ops",
    }
    assert decode_task(written_with("TaskRequest", 5, old)) == TaskRequest(
        "e1", "wf", "a", "task", 2, "e1:a:2", 5, {"n": 1}, "h", tenant="acme", department="ops"
    )
