"""The body of a task request in the current schema, written without fastavro.

Every work node's attempt sends one, and fastavro's `schemaless_writer` took about three times
what this does, most of it finding its way through the schema, as for lifecycle events
(`lifecycle_writing`, whose pieces this uses). Written field by field in the order of
`braidflow.TaskRequest`; a test holds it to fastavro's bytes for any request.
"""

from __future__ import annotations

from braidflow.engine.messages import TaskRequest
from braidflow.schemas.lifecycle_writing import (
    _LONG_MAX,
    _LONG_MIN,
    _NULL,
    _PRESENT,
    _optional_string,
    _string,
    avro_long,
)
from braidflow.schemas.records import _json

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _optional_number(n: int | None, low: int, high: int) -> bytes:
    # A union's branch is chosen by type, as fastavro does: an int in the range, never a bool.
    if n is None:
        return _NULL
    if type(n) is not int or not low <= n <= high:
        raise ValueError(f"{n!r} does not fit a union of null and a number")
    return _PRESENT + avro_long(n)


def write_task_request(task: TaskRequest) -> bytes:
    """The Avro body of `task` (no framing header), as fastavro writes it.

    TypeError, ValueError or OverflowError when a field does not fit the schema.
    """
    return b"".join(
        (
            _string(task.execution_id),
            _string(task.workflow_id),
            _string(task.node_id),
            _string(task.kind),
            avro_long(task.attempt),
            _string(task.idempotency_key),
            avro_long(task.at),
            _optional_string(_json(task.input)),
            _optional_string(task.handler),
            _optional_number(task.timeout_ms, _LONG_MIN, _LONG_MAX),
            _optional_number(task.item, _INT_MIN, _INT_MAX),
            _string(task.tenant),
            _optional_string(task.department),
            _optional_string(task.traceparent),
        )
    )
