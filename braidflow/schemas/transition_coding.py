"""The body of a transition in the current schema, written and read without fastavro, for the
kinds every execution sends: a start, a control node's run, a work node's result; and a fired
timer, one for every delay and timeout that comes due (100,000 parked executions, as many).

Every step reads its transition and every task's attempt writes one; fastavro took most of its
time finding its way through the union and the record's schema, and building the dicts the
engine's dataclasses are then made from. These kinds are written and read here field by field
in the schema's order (a union's branch, then the record), with `avro_binary`'s values; the
other kinds (cancels, approvals, children...) go through fastavro as before. Tests hold both to
fastavro's bytes and results, damaged bytes included. Written for one schema (`WRITTEN_FOR`): for any other current schema fastavro writes
and reads every kind, and a test fails until this module is brought up to date.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from braidflow.engine.messages import (
    NodeCompleted,
    NodeError,
    NodeFailed,
    ParentLink,
    RunNode,
    StartExecution,
    TimerFired,
    Transition,
)
from braidflow.schemas.avro_binary import (
    INT_MAX,
    INT_MIN,
    NULL,
    PRESENT,
    avro_long,
    read_long,
    read_optional_long,
    read_optional_string,
    read_present,
    read_string,
    read_whole,
    write_name,
    write_optional_number,
    write_optional_string,
    write_string,
)
from braidflow.schemas.records import _json, _unjson

WRITTEN_FOR = bytes.fromhex("984e0c72824cbbdd")
"""The fingerprint of the `braidflow.Transition` schema written and read here. Changing it (a
field of a kind written here, a kind appended): update this module, then this."""

# The union's branches (zigzag varints of their index) of the kinds written here.
_START, _RUN, _COMPLETED, _FAILED = b"\x00", b"\x02", b"\x04", b"\x06"
_TIMER = b"\x0c"


# Compiled, reading an `int` field converts a bool to 1 before any check could see it; read
# through `attrgetter`, the field comes as the object it is.
_depth_as_given: Callable[[ParentLink], object] = attrgetter("depth")


def write_transition(transition: Transition) -> bytes | None:
    """The Avro body of `transition` (no framing header) as fastavro writes it, or None for a
    kind left to fastavro. TypeError, ValueError or OverflowError when a field does not fit."""
    kind = type(transition)
    if kind is NodeCompleted:
        t: NodeCompleted = transition  # type: ignore[assignment]
        return b"".join(
            (
                _COMPLETED,
                write_string(t.id),
                write_string(t.execution_id),
                avro_long(t.at),
                write_name(t.node_id),
                avro_long(t.attempt),
                write_optional_string(_json(t.output)),
                write_optional_number(t.item, INT_MIN, INT_MAX),
            )
        )
    if kind is RunNode:
        r: RunNode = transition  # type: ignore[assignment]
        return b"".join(
            (
                _RUN,
                write_string(r.id),
                write_string(r.execution_id),
                avro_long(r.at),
                write_name(r.node_id),
            )
        )
    if kind is NodeFailed:
        f: NodeFailed = transition  # type: ignore[assignment]
        error = f.error
        return b"".join(
            (
                _FAILED,
                write_string(f.id),
                write_string(f.execution_id),
                avro_long(f.at),
                write_name(f.node_id),
                avro_long(f.attempt),
                write_string(error.type),
                write_string(error.message),
                write_optional_string(error.node_id),
                write_optional_number(f.item, INT_MIN, INT_MAX),
            )
        )
    if kind is StartExecution:
        return _start(transition)  # type: ignore[arg-type]
    if kind is TimerFired:
        fired: TimerFired = transition  # type: ignore[assignment]
        return b"".join(
            (
                _TIMER,
                write_string(fired.id),
                write_string(fired.execution_id),
                avro_long(fired.at),
                write_string(fired.timer_id),
            )
        )
    return None


def _start(s: StartExecution) -> bytes:
    parent = s.parent
    if parent is None:
        parent_bytes = NULL
    else:
        depth = _depth_as_given(parent)
        # fastavro picks the union's record branch only if every field fits it.
        if type(depth) is not int or not INT_MIN <= depth <= INT_MAX:
            raise ValueError(f"{parent!r} does not fit a union of null and ParentLink")
        parent_bytes = b"".join(
            (
                PRESENT,
                write_string(parent.execution_id),
                write_string(parent.workflow_id),
                write_string(parent.node_id),
                avro_long(depth),
                write_optional_string(_json(parent.context)),
                write_optional_number(parent.item, INT_MIN, INT_MAX),
            )
        )
    return b"".join(
        (
            _START,
            write_string(s.id),
            write_string(s.execution_id),
            avro_long(s.at),
            write_name(s.workflow_id),
            avro_long(s.workflow_version),
            write_optional_string(_json(s.input)),
            write_optional_string(_json(s.event)),
            parent_bytes,
            write_optional_string(_json(s.dept)),
            write_name(s.tenant),
            write_optional_string(s.traceparent),
        )
    )


def read_transition(data: bytes, at: int) -> Transition | None:
    """The transition whose body (current schema) begins at `at` of `data`, or None for a kind
    left to fastavro; CodecError if the bytes hold no such transition, or more than one."""
    return read_whole(_read, data, at, "braidflow.Transition")


def _read(data: bytes, at: int) -> tuple[Transition | None, int]:
    branch = data[at]
    if (branch > _FAILED[0] and branch != _TIMER[0]) or branch & 1:
        # Another kind, a varint of more than a byte, or a negative branch: fastavro's, whole.
        return None, len(data)
    at += 1
    transition_id, at = read_string(data, at)
    execution_id, at = read_string(data, at)
    happened, at = read_long(data, at)
    if branch == _RUN[0]:
        node_id, at = read_string(data, at)
        return RunNode(transition_id, execution_id, happened, node_id), at
    if branch == _TIMER[0]:
        timer_id, at = read_string(data, at)
        return TimerFired(transition_id, execution_id, happened, timer_id), at
    if branch == _COMPLETED[0]:
        node_id, at = read_string(data, at)
        attempt, at = read_long(data, at)
        output, at = read_optional_string(data, at)
        item, at = read_optional_long(data, at)
        completed = NodeCompleted(
            transition_id, execution_id, happened, node_id, attempt, _unjson(output), item
        )
        return completed, at
    if branch == _FAILED[0]:
        node_id, at = read_string(data, at)
        attempt, at = read_long(data, at)
        error_type, at = read_string(data, at)
        message, at = read_string(data, at)
        error_node, at = read_optional_string(data, at)
        item, at = read_optional_long(data, at)
        error = NodeError(error_type, message, error_node)
        return NodeFailed(transition_id, execution_id, happened, node_id, attempt, error, item), at
    return _read_start(data, at, transition_id, execution_id, happened)


def _read_start(
    data: bytes, at: int, transition_id: str, execution_id: str, happened: int
) -> tuple[StartExecution, int]:
    workflow_id, at = read_string(data, at)
    version, at = read_long(data, at)
    text, at = read_optional_string(data, at)
    event, at = read_optional_string(data, at)
    parent, at = read_parent_link(data, at)
    dept, at = read_optional_string(data, at)
    tenant, at = read_string(data, at)
    traceparent, at = read_optional_string(data, at)
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


def read_parent_link(data: bytes, at: int) -> tuple[ParentLink | None, int]:
    """The `["null", ParentLink]` union at `at` (a child's start, a child's state), and where
    the next value begins."""
    present, at = read_present(data, at)
    if not present:
        return None, at
    execution_id, at = read_string(data, at)
    workflow_id, at = read_string(data, at)
    node_id, at = read_string(data, at)
    depth, at = read_long(data, at)
    context, at = read_optional_string(data, at)
    item, at = read_optional_long(data, at)
    return ParentLink(execution_id, workflow_id, node_id, depth, _unjson(context), item), at
