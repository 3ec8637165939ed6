"""The body of a transition in the current schema, written and read without fastavro, for the
kinds every execution sends: a start, a control node's run, a work node's result.

Every step reads its transition and every task's attempt writes one; fastavro took most of its
time finding its way through the union and the record's schema, and building the dicts the
engine's dataclasses are then made from. These kinds are written and read here field by field
in the schema's order (a union's branch, then the record), with the pieces of
`lifecycle_writing` and `lifecycle_reading`; the other kinds (cancels, timers, approvals...)
go through fastavro as before. Tests hold both to fastavro's bytes and results, damaged bytes
included. Written for one schema (`WRITTEN_FOR`): for any other current schema fastavro writes
and reads every kind, and a test fails until this module is brought up to date.
"""

from __future__ import annotations

from braidflow.engine.messages import (
    NodeCompleted,
    NodeError,
    NodeFailed,
    ParentLink,
    RunNode,
    StartExecution,
    Transition,
)
from braidflow.schemas.framing import CodecError
from braidflow.schemas.lifecycle_reading import _long, _string
from braidflow.schemas.lifecycle_writing import _NULL, _PRESENT, _optional_string, avro_long
from braidflow.schemas.lifecycle_writing import _string as _written_string
from braidflow.schemas.records import _json, _unjson
from braidflow.schemas.stored_reading import _optional_long, _present
from braidflow.schemas.stored_reading import _optional_string as _read_optional
from braidflow.schemas.task_writing import _INT_MAX, _INT_MIN, _optional_number

WRITTEN_FOR = bytes.fromhex("984e0c72824cbbdd")
"""The fingerprint of the `braidflow.Transition` schema written and read here. Changing it (a
field of a kind written here, a kind appended): update this module, then this."""

# The union's branches (zigzag varints of their index) of the kinds written here.
_START, _RUN, _COMPLETED, _FAILED = b"\x00", b"\x02", b"\x04", b"\x06"


def write_transition(transition: Transition) -> bytes | None:
    """The Avro body of `transition` (no framing header) as fastavro writes it, or None for a
    kind left to fastavro. TypeError, ValueError or OverflowError when a field does not fit."""
    kind = type(transition)
    if kind is NodeCompleted:
        t: NodeCompleted = transition  # type: ignore[assignment]
        return b"".join(
            (
                _COMPLETED,
                _written_string(t.id),
                _written_string(t.execution_id),
                avro_long(t.at),
                _written_string(t.node_id),
                avro_long(t.attempt),
                _optional_string(_json(t.output)),
                _optional_number(t.item, _INT_MIN, _INT_MAX),
            )
        )
    if kind is RunNode:
        r: RunNode = transition  # type: ignore[assignment]
        return b"".join(
            (
                _RUN,
                _written_string(r.id),
                _written_string(r.execution_id),
                avro_long(r.at),
                _written_string(r.node_id),
            )
        )
    if kind is NodeFailed:
        f: NodeFailed = transition  # type: ignore[assignment]
        error = f.error
        return b"".join(
            (
                _FAILED,
                _written_string(f.id),
                _written_string(f.execution_id),
                avro_long(f.at),
                _written_string(f.node_id),
                avro_long(f.attempt),
                _written_string(error.type),
                _written_string(error.message),
                _optional_string(error.node_id),
                _optional_number(f.item, _INT_MIN, _INT_MAX),
            )
        )
    if kind is StartExecution:
        return _start(transition)  # type: ignore[arg-type]
    return None


def _start(s: StartExecution) -> bytes:
    parent = s.parent
    if parent is None:
        parent_bytes = _NULL
    else:
        depth = parent.depth
        # fastavro picks the union's record branch only if every field fits it.
        if type(depth) is not int or not _INT_MIN <= depth <= _INT_MAX:
            raise ValueError(f"{parent!r} does not fit a union of null and ParentLink")
        parent_bytes = b"".join(
            (
                _PRESENT,
                _written_string(parent.execution_id),
                _written_string(parent.workflow_id),
                _written_string(parent.node_id),
                avro_long(depth),
                _optional_string(_json(parent.context)),
                _optional_number(parent.item, _INT_MIN, _INT_MAX),
            )
        )
    return b"".join(
        (
            _START,
            _written_string(s.id),
            _written_string(s.execution_id),
            avro_long(s.at),
            _written_string(s.workflow_id),
            avro_long(s.workflow_version),
            _optional_string(_json(s.input)),
            _optional_string(_json(s.event)),
            parent_bytes,
            _optional_string(_json(s.dept)),
            _written_string(s.tenant),
            _optional_string(s.traceparent),
        )
    )


def read_transition(data: bytes, at: int) -> Transition | None:
    """The transition whose body (current schema) begins at `at` of `data`, or None for a kind
    left to fastavro; CodecError if the bytes hold no such transition, or more than one."""
    try:
        transition, at = _read(data, at)
    except CodecError:
        raise
    except (EOFError, IndexError) as exc:
        raise CodecError(f"truncated braidflow.Transition: {len(data)} bytes") from exc
    except Exception as exc:
        # Whatever the bytes make the reader raise, the record is poison, not a crash.
        raise CodecError(
            f"cannot decode braidflow.Transition: {type(exc).__name__}: {exc}"
        ) from exc
    if transition is not None and at != len(data):
        raise CodecError(f"{len(data) - at} bytes left over after a braidflow.Transition")
    return transition


def _read(data: bytes, at: int) -> tuple[Transition | None, int]:
    branch = data[at]
    if branch > _FAILED[0] or branch & 1:
        # Another kind, a varint of more than a byte, or a negative branch: fastavro's.
        return None, at
    at += 1
    transition_id, at = _string(data, at)
    execution_id, at = _string(data, at)
    happened, at = _long(data, at)
    if branch == _RUN[0]:
        node_id, at = _string(data, at)
        return RunNode(transition_id, execution_id, happened, node_id), at
    if branch == _COMPLETED[0]:
        node_id, at = _string(data, at)
        attempt, at = _long(data, at)
        output, at = _read_optional(data, at)
        item, at = _optional_long(data, at)
        completed = NodeCompleted(
            transition_id, execution_id, happened, node_id, attempt, _unjson(output), item
        )
        return completed, at
    if branch == _FAILED[0]:
        node_id, at = _string(data, at)
        attempt, at = _long(data, at)
        error_type, at = _string(data, at)
        message, at = _string(data, at)
        error_node, at = _read_optional(data, at)
        item, at = _optional_long(data, at)
        error = NodeError(error_type, message, error_node)
        return NodeFailed(transition_id, execution_id, happened, node_id, attempt, error, item), at
    return _read_start(data, at, transition_id, execution_id, happened)


def _read_start(
    data: bytes, at: int, transition_id: str, execution_id: str, happened: int
) -> tuple[StartExecution, int]:
    workflow_id, at = _string(data, at)
    version, at = _long(data, at)
    text, at = _read_optional(data, at)
    event, at = _read_optional(data, at)
    parent: ParentLink | None = None
    present, at = _present(data, at)
    if present:
        parent_execution, at = _string(data, at)
        parent_workflow, at = _string(data, at)
        parent_node, at = _string(data, at)
        depth, at = _long(data, at)
        context, at = _read_optional(data, at)
        item, at = _optional_long(data, at)
        parent = ParentLink(
            parent_execution, parent_workflow, parent_node, depth, _unjson(context), item
        )
    dept, at = _read_optional(data, at)
    tenant, at = _string(data, at)
    traceparent, at = _read_optional(data, at)
    start = StartExecution(
        transition_id,
        execution_id,
        happened,
        workflow_id,
        version,
        _unjson(text),
        _unjson(event),
        parent,
        _unjson(dept),
        tenant,
        traceparent=traceparent,
    )
    return start, at
