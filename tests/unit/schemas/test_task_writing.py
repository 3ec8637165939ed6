"""A task request written without fastavro: the very bytes fastavro writes, and a CodecError
where fastavro's writer fails."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycle_event_values import INTS, JSON, LONGS, TEXT

from braidflow.engine import TaskRequest
from braidflow.schemas import CodecError, decode_task, encode_task
from braidflow.schemas.codec import _task_requests

REQUESTS = st.builds(
    TaskRequest,
    TEXT,
    TEXT,
    TEXT,
    TEXT,
    INTS,
    TEXT,
    LONGS,
    JSON,
    st.none() | TEXT,
    st.none() | LONGS,
    st.none() | INTS,
    TEXT,
    st.none() | TEXT,
    st.none() | TEXT,
)


@settings(max_examples=400)
@given(REQUESTS)
def test_a_task_request_is_written_as_fastavro_writes_it(task: TaskRequest) -> None:
    assert encode_task(task) == _task_requests.encode(task)
    assert decode_task(encode_task(task)) == _task_requests.decode(encode_task(task))


@pytest.mark.parametrize(
    "changes",
    [
        {"at": 2**63},
        {"at": -(2**63) - 1},
        {"timeout_ms": 2**63},
        {"item": 2**31},
        {"item": -(2**31) - 1},
        {"item": True},
        {"timeout_ms": 1.5},
        {"node_id": 7},
        {"handler": b"h"},
        {"department": 3},
    ],
)
def test_a_field_that_does_not_fit_fails_as_with_fastavro(changes: dict[str, object]) -> None:
    task = replace(TaskRequest("e1", "wf", "a", "task", 1, "e1/a/1", 0), **changes)  # type: ignore[arg-type]
    with pytest.raises(CodecError):
        _task_requests.encode(task)
    with pytest.raises(CodecError):
        encode_task(task)
