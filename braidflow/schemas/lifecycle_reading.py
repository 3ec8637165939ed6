"""The body of a lifecycle event written with the current schema, read without fastavro.

Every worker reads every lifecycle event more than once (the stats' first stage, the execution
index, the event streams), and fastavro's `schemaless_reader` spends most of its time per
record calling its buffer's `read` for each field; reading the bytes in place, with a shortcut
for the one-byte numbers most fields are, takes about half. It reads the current
`braidflow.LifecycleEvent` schema only, field by field in its order: records of older versions
still go through fastavro's schema resolution (`Codec.decode`), and a test holds this reader
to fastavro's results, for values and for malformed bytes alike (both a CodecError).
`read_lifecycle_outline` reads what an event says but the ids that name it and its data into
`LifecycleOutline`, a named tuple, for readers that count events: making the frozen
`LifecycleEvent` was a third of reading one, and the ids are two of its six strings.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from braidflow.access import DEFAULT_TENANT
from braidflow.engine.messages import LifecycleEvent, NodeError
from braidflow.schemas.avro_binary import read_long, read_string, read_whole
from braidflow.schemas.framing import CodecError
from braidflow.schemas.records import _unjson


def _skipped(data: bytes, at: int) -> int:
    """Where the value after the string at `at` begins."""
    size, at = read_long(data, at)
    if size < 0:
        raise CodecError(f"an Avro string of negative length {size}")
    if at + size > len(data):
        raise EOFError
    return at + size


def _refused(data: bytes, at: int) -> CodecError:
    """The error of a `["null", X]` union at `at` whose branch is neither 0 nor 1."""
    return CodecError(f"union branch {read_long(data, at)[0]} of a [null, X] union")


class LifecycleOutline(NamedTuple):
    """What a lifecycle event says, without its id, its execution's id and its data, in a
    named tuple: for readers that count events (the stats' first stage). Its fields are named
    as `LifecycleEvent`'s, in the same order."""

    type: str
    workflow_id: str
    workflow_version: int
    at: int
    node_id: str | None = None
    attempt: int | None = None
    error: NodeError | None = None
    tenant: str = DEFAULT_TENANT
    started_at: int | None = None


_outline = partial(tuple.__new__, LifecycleOutline)
"""`LifecycleOutline` from a tuple of its fields, in one C call (its `_make` is Python)."""


def read_lifecycle_event(data: bytes, at: int, *, with_data: bool = True) -> LifecycleEvent:
    """The event whose body (current schema) begins at `at` of `data`; CodecError if the
    bytes hold no such event, or more than one. `with_data=False`: the event's data is
    skipped, unread (None)."""
    return LifecycleEvent(*_read(data, at, with_data))


def read_lifecycle_outline(data: bytes, at: int) -> LifecycleOutline:
    """The outline of the event whose body (current schema) begins at `at` of `data`;
    CodecError if the bytes hold no such event, or more than one. Neither the ids nor the
    data are decoded, only passed over: bytes whose only fault is there (text that is not
    UTF-8, JSON that is not JSON) read."""
    return _outline(read_whole(_outline_fields, data, at, "braidflow.LifecycleEvent"))


def read_lifecycle_heading(data: bytes, at: int) -> tuple[str, str] | None:
    """The id and type of the event whose body (current schema) begins at `at`: its first
    two fields, read without the rest; None when the bytes there hold no two strings."""
    try:
        event_id, at = read_string(data, at)
        event_type, _ = read_string(data, at)
    except (CodecError, EOFError, IndexError, UnicodeDecodeError):
        return None
    return event_id, event_type


def _read(data: bytes, at: int, with_data: bool) -> tuple[Any, ...]:
    def fields(data: bytes, at: int) -> tuple[tuple[Any, ...], int]:
        return _fields(with_data, True, data, at)

    return read_whole(fields, data, at, "braidflow.LifecycleEvent")


def _fields(with_data: bool, whole: bool, data: bytes, at: int) -> tuple[tuple[Any, ...], int]:
    """The event's fields in `LifecycleEvent`'s order, and where the bytes after it begin;
    `whole=False`: `LifecycleOutline`'s, the ids and the data passed over unread.

    Each `["null", X]` union's branch is read in place (byte 0: null; 2, zigzag 1: an X), as
    is a string's one-byte length: a call for each took a tenth of the reading."""
    event_id = execution_id = None
    if whole:
        event_id, at = read_string(data, at)
    else:
        at = _passed(data, at)
    event_type, at = read_string(data, at)
    if whole:
        execution_id, at = read_string(data, at)
    else:
        at = _passed(data, at)
    workflow_id, at = read_string(data, at)
    version, at = read_long(data, at)
    happened, at = read_long(data, at)
    node_id: str | None = None
    attempt: int | None = None
    text: str | None = None
    error: NodeError | None = None
    started_at: int | None = None
    branch = data[at]
    if branch == 2:
        node_id, at = read_string(data, at + 1)
    elif branch:
        raise _refused(data, at)
    else:
        at += 1
    branch = data[at]
    if branch == 2:
        attempt, at = read_long(data, at + 1)
    elif branch:
        raise _refused(data, at)
    else:
        at += 1
    branch = data[at]
    if branch == 2 and with_data:
        text, at = read_string(data, at + 1)
    elif branch == 2:
        at = _skipped(data, at + 1)
    elif branch:
        raise _refused(data, at)
    else:
        at += 1
    branch = data[at]
    if branch == 2:
        error_type, at = read_string(data, at + 1)
        message, at = read_string(data, at)
        error_node: str | None = None
        branch = data[at]
        if branch == 2:
            error_node, at = read_string(data, at + 1)
        elif branch:
            raise _refused(data, at)
        else:
            at += 1
        error = NodeError(error_type, message, error_node)
    elif branch:
        raise _refused(data, at)
    else:
        at += 1
    tenant, at = read_string(data, at)
    branch = data[at]
    if branch == 2:
        started_at, at = read_long(data, at + 1)
    elif branch:
        raise _refused(data, at)
    else:
        at += 1
    if not whole:
        return (
            event_type,
            workflow_id,
            version,
            happened,
            node_id,
            attempt,
            error,
            tenant,
            started_at,
        ), at
    fields = (
        event_id,
        event_type,
        execution_id,
        workflow_id,
        version,
        happened,
        node_id,
        attempt,
        _unjson(text),
        error,
        tenant,
        started_at,
    )
    return fields, at


def _passed(data: bytes, at: int) -> int:
    """Where the value after the string at `at` begins, its one-byte length read in place."""
    size = data[at]
    if size < 0x80 and not size & 1:
        end = at + 1 + (size >> 1)
        if end > len(data):
            raise EOFError
        return end
    return _skipped(data, at)


_outline_fields = partial(_fields, False, False)
