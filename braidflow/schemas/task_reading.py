"""The body of a task request written with the current schema, read without fastavro.

An executor reads every task request it runs, most of them handed over by its own worker's
orchestrator as they are sent (`Executor.run_here`), and fastavro's `schemaless_reader` took
about a third of a no-op task's run, most of it finding its way through the schema. This reads
the current `braidflow.TaskRequest` schema only, field by field in its order, with
`avro_binary`'s values: records of older versions still go through fastavro's schema
resolution (`Codec.decode`), and a test holds this reader to fastavro's results, for values and
for damaged bytes alike (both a CodecError).
"""

from __future__ import annotations

from braidflow.engine.messages import TaskRequest
from braidflow.schemas.avro_binary import (
    read_long,
    read_optional_long,
    read_optional_string,
    read_string,
    read_whole,
)
from braidflow.schemas.records import _unjson


def read_task_request(data: bytes, at: int) -> TaskRequest:
    """The task request whose body (current schema) begins at `at` of `data`; CodecError if
    the bytes hold no such request, or more than one."""
    return read_whole(_read, data, at, "braidflow.TaskRequest")


def _read(data: bytes, at: int) -> tuple[TaskRequest, int]:
    execution_id, at = read_string(data, at)
    workflow_id, at = read_string(data, at)
    node_id, at = read_string(data, at)
    kind, at = read_string(data, at)
    attempt, at = read_long(data, at)
    idempotency_key, at = read_string(data, at)
    requested, at = read_long(data, at)
    text, at = read_optional_string(data, at)
    handler, at = read_optional_string(data, at)
    timeout_ms, at = read_optional_long(data, at)
    item, at = read_optional_long(data, at)
    tenant, at = read_string(data, at)
    department, at = read_optional_string(data, at)
    traceparent, at = read_optional_string(data, at)
    request = TaskRequest(
        execution_id,
        workflow_id,
        node_id,
        kind,
        attempt,
        idempotency_key,
        requested,
        _unjson(text),
        handler,
        timeout_ms,
        item,
        tenant,
        department,
        traceparent,
    )
    return request, at
