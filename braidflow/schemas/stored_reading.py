"""A stored execution written with the current schema, read without fastavro.

A worker reads an execution's state row whenever the execution is not kept decoded (after a
restart, a rebalance, or once more executions run than its cache holds), and fastavro's
`schemaless_reader` took 65 - 90 µs for a row of a few node runs, most of it calling its
buffer's `read` for each field and building dicts that are then turned into the engine's
dataclasses. Read here in place, field by field in the order of `braidflow.StoredExecution`
(the mirror of `stored_encoding`), straight into the dataclasses; and where each node run's
bytes lie is kept, so the next step copies the runs it does not change, as it does for a state
it wrote itself. Records of older versions still go through fastavro's schema resolution
(`Codec.decode`), held transitions (a union of every kind, rare) through fastavro too, and a
test holds this reader to fastavro's results, for values and for damaged bytes alike.
"""

from __future__ import annotations

from io import BytesIO
from typing import cast

from fastavro import schemaless_reader

from braidflow.engine.messages import ItemError, NodeError, Transition
from braidflow.engine.state import (
    ControlAction,
    ExecutionState,
    ForeachProgress,
    JoinState,
    LoopProgress,
    NodeRun,
)
from braidflow.schemas.avro_binary import (
    read_long,
    read_optional_long,
    read_optional_string,
    read_present,
    read_string,
    read_whole,
)
from braidflow.schemas.framing import CodecError
from braidflow.schemas.records import (
    TRANSITION,
    AvroRecord,
    OutboxEntry,
    StoredExecution,
    _unjson,
    _unstate_json,
)
from braidflow.schemas.store import current_schema
from braidflow.schemas.stored_encoding import StoredEncoding
from braidflow.schemas.transition_coding import read_parent_link

_TRANSITION = current_schema("braidflow.Transition")


def read_stored(data: bytes, at: int) -> tuple[StoredExecution, StoredEncoding]:
    """The stored execution whose body (current schema) begins at `at` of `data`, and its
    encoding with where its node runs lie; CodecError if the bytes hold no such record, or
    more than one."""
    stored, runs, ends = read_whole(_stored, data, at, "braidflow.StoredExecution")
    return stored, StoredEncoding(data, runs, ends)


def _count(data: bytes, at: int) -> tuple[int, int]:
    """The count of the next block of an array or a map (0: its end), and where its items
    begin. A negative count is followed by the block's size in bytes, which is not needed."""
    byte = data[at]
    if byte < 0x80:
        count, at = (byte >> 1) ^ -(byte & 1), at + 1
    else:
        count, at = read_long(data, at)
    if count < 0:
        _, at = read_long(data, at)
        return -count, at
    return count, at


def _boolean(data: bytes, at: int) -> tuple[bool, int]:
    return data[at] != 0, at + 1


def _bytes(data: bytes, at: int) -> tuple[bytes, int]:
    size, at = read_long(data, at)
    end = at + size
    if size < 0:
        raise CodecError(f"Avro bytes of negative length {size}")
    if end > len(data):
        raise EOFError
    return data[at:end], end


def _ints(data: bytes, at: int) -> tuple[tuple[int, ...], int]:
    numbers: list[int] = []
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            n, at = read_long(data, at)
            numbers.append(n)
        count, at = _count(data, at)
    return tuple(numbers), at


def _error(data: bytes, at: int) -> tuple[NodeError, int]:
    error_type, at = read_string(data, at)
    message, at = read_string(data, at)
    node_id, at = read_optional_string(data, at)
    return NodeError(error_type, message, node_id), at


def _optional_error(data: bytes, at: int) -> tuple[NodeError | None, int]:
    present, at = read_present(data, at)
    if present:
        return _error(data, at)
    return None, at


def _node_run(data: bytes, at: int) -> tuple[NodeRun, int]:
    node_id, at = read_string(data, at)
    status, at = read_string(data, at)
    attempt, at = read_long(data, at)
    node_input, at = read_optional_string(data, at)
    output, at = read_optional_string(data, at)
    error, at = _optional_error(data, at)
    started_at, at = read_optional_long(data, at)
    completed_at, at = read_optional_long(data, at)
    errors: list[NodeError] = []
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            failure, at = _error(data, at)
            errors.append(failure)
        count, at = _count(data, at)
    run = NodeRun(
        node_id,
        status,
        attempt,
        _unstate_json(node_input),
        _unstate_json(output),
        error,
        started_at,
        completed_at,
        tuple(errors),
    )
    return run, at


def _foreach(data: bytes, at: int) -> tuple[ForeachProgress, int]:
    node_id, at = read_string(data, at)
    attempt, at = read_long(data, at)
    total, at = read_long(data, at)
    following, at = read_long(data, at)
    running, at = _ints(data, at)
    pending: list[tuple[int, object]] = []
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            index, at = read_long(data, at)
            output, at = read_optional_string(data, at)
            pending.append((index, _unjson(output)))
        count, at = _count(data, at)
    failures: list[ItemError] = []
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            index, at = read_long(data, at)
            error_type, at = read_string(data, at)
            message, at = read_string(data, at)
            failures.append(ItemError(index, error_type, message))
        count, at = _count(data, at)
    chunks, at = read_long(data, at)
    failed, at = read_long(data, at)
    progress = ForeachProgress(
        node_id,
        attempt,
        total,
        following,
        running,
        tuple(pending),
        tuple(failures),
        chunks,
        failed,
    )
    return progress, at


def _held(data: bytes, at: int) -> tuple[Transition, int]:
    buffer = BytesIO(data)
    buffer.seek(at)
    # fastavro types what it reads as any Avro value; a record schema reads a dict.
    record = cast(
        AvroRecord,
        schemaless_reader(
            buffer, _TRANSITION, None, return_record_name=True, return_record_name_override=True
        ),
    )
    return TRANSITION.from_avro(record), buffer.tell()


def _stored(
    data: bytes, at: int
) -> tuple[tuple[StoredExecution, tuple[NodeRun, ...], tuple[int, ...]], int]:
    execution_id, at = read_string(data, at)
    workflow_id, at = read_string(data, at)
    version, at = read_long(data, at)
    status, at = read_string(data, at)
    started_at, at = read_long(data, at)
    updated_at, at = read_long(data, at)
    state_input, at = read_optional_string(data, at)
    event, at = read_optional_string(data, at)
    output, at = read_optional_string(data, at)
    error, at = _optional_error(data, at)
    completed_at, at = read_optional_long(data, at)
    runs: list[NodeRun] = []
    starts: list[int] = []
    ends: list[int] = []
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            starts.append(at)
            run, at = _node_run(data, at)
            runs.append(run)
            ends.append(at)
        count, at = _count(data, at)
    joins: dict[str, JoinState] = {}
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            node_id, at = read_string(data, at)
            taken, at = _ints(data, at)
            dead, at = _ints(data, at)
            fired, at = _boolean(data, at)
            joins[node_id] = JoinState(node_id, taken, dead, fired)
        count, at = _count(data, at)
    timers: dict[str, int] = {}
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            timer_id, at = read_string(data, at)
            timers[timer_id], at = read_long(data, at)
        count, at = _count(data, at)
    paused, at = _boolean(data, at)
    held: list[Transition] = []
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            transition, at = _held(data, at)
            held.append(transition)
        count, at = _count(data, at)
    parent, at = read_parent_link(data, at)
    children: dict[str, str] = {}
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            node_id, at = read_string(data, at)
            children[node_id], at = read_string(data, at)
        count, at = _count(data, at)
    control: list[ControlAction] = []
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            action, at = read_string(data, at)
            by, at = read_string(data, at)
            when, at = read_long(data, at)
            acted_on, at = read_optional_string(data, at)
            reason, at = read_string(data, at)
            control.append(ControlAction(action, by, when, acted_on, reason))
        count, at = _count(data, at)
    foreach: dict[str, ForeachProgress] = {}
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            progress, at = _foreach(data, at)
            foreach[progress.node_id] = progress
        count, at = _count(data, at)
    loops: dict[str, LoopProgress] = {}
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            node_id, at = read_string(data, at)
            passes, at = read_long(data, at)
            loops[node_id] = LoopProgress(node_id, passes)
        count, at = _count(data, at)
    dept, at = read_optional_string(data, at)
    tenant, at = read_string(data, at)
    admission, at = read_optional_string(data, at)
    traceparent, at = read_optional_string(data, at)
    outbox: list[OutboxEntry] = []
    count, at = _count(data, at)
    while count:
        for _ in range(count):
            kind, at = read_string(data, at)
            entry_id, at = read_string(data, at)
            value, at = _bytes(data, at)
            topic, at = read_optional_string(data, at)
            present, at = read_present(data, at)
            key: bytes | None = None
            if present:
                key, at = _bytes(data, at)
            entry_trace, at = read_optional_string(data, at)
            outbox.append(OutboxEntry(kind, entry_id, value, topic, key, entry_trace))
        count, at = _count(data, at)
    state = ExecutionState(
        execution_id,
        workflow_id,
        version,
        status,
        started_at,
        updated_at,
        _unstate_json(state_input),
        _unjson(event),
        _unstate_json(output),
        error,
        completed_at,
        {run.node_id: run for run in runs},
        joins,
        timers,
        paused,
        tuple(held),
        parent,
        children,
        tuple(control),
        foreach,
        loops,
        _unjson(dept),
        tenant,
        admission,
        traceparent,
    )
    stored = StoredExecution(state, tuple(outbox))
    # The bytes of each run, for the next step to copy: in one block of the array (as Avro's
    # writers write it), run i is `data[ends[i]:ends[i + 1]]`; runs in several blocks have
    # counts between them, and are not offered.
    if starts and starts[1:] == ends[:-1]:
        return (stored, tuple(runs), (starts[0], *ends)), at
    return (stored, (), ()), at
