"""The body of a task request in the current schema, written without fastavro.

Every work node's attempt sends one, and fastavro's `schemaless_writer` took about three times
what this does, most of it finding its way through the schema, as for lifecycle events
(`lifecycle_writing`); its values are `avro_binary`'s. Written field by field in the order of
`braidflow.TaskRequest`; a test holds it to fastavro's bytes for any request.
"""

from __future__ import annotations

from braidflow.engine.messages import TaskRequest
from braidflow.schemas.avro_binary import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    avro_long,
    write_name,
    write_optional_number,
    write_optional_string,
    write_string,
)
from braidflow.schemas.records import _json


def write_task_request(task: TaskRequest) -> bytes:
    """The Avro body of `task` (no framing header), as fastavro writes it.

    TypeError, ValueError or OverflowError when a field does not fit the schema.
    """
    return b"".join(
        (
            write_string(task.execution_id),
            write_name(task.workflow_id),
            write_name(task.node_id),
            write_name(task.kind),
            avro_long(task.attempt),
            write_string(task.idempotency_key),
            avro_long(task.at),
            write_optional_string(_json(task.input)),
            write_optional_string(task.handler),
            write_optional_number(task.timeout_ms, LONG_MIN, LONG_MAX),
            write_optional_number(task.item, INT_MIN, INT_MAX),
            write_name(task.tenant),
            write_optional_string(task.department),
            write_optional_string(task.traceparent),
        )
    )
