"""The body of a lifecycle event written with the current schema, read without fastavro.

Every worker reads every lifecycle event more than once (the stats' first stage, the execution
index, the event streams), and fastavro's `schemaless_reader` spends most of its time per
record calling its buffer's `read` for each field; reading the bytes in place, with a shortcut
for the one-byte numbers most fields are, takes about half. It reads the current
`braidflow.LifecycleEvent` schema only, field by field in its order: records of older versions
still go through fastavro's schema resolution (`Codec.decode`), and a test holds this reader
to fastavro's results, for values and for malformed bytes alike (both a CodecError).
`read_lifecycle_fields` reads the same into `LifecycleFields`, a named tuple, for readers that
only look at an event: making the frozen `LifecycleEvent` was a third of reading one.
"""

from __future__ import annotations

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


class LifecycleFields(NamedTuple):
    """A lifecycle event's fields, named and ordered as `LifecycleEvent`'s, in a named tuple:
    for readers that only look at events (the stats' first stage). Made several times faster
    than the frozen dataclass, whose every field is set through `object.__setattr__`."""

    id: str
    type: str
    execution_id: str
    workflow_id: str
    workflow_version: int
    at: int
    node_id: str | None = None
    attempt: int | None = None
    data: Any = None
    error: NodeError | None = None
    tenant: str = DEFAULT_TENANT
    started_at: int | None = None


def read_lifecycle_event(data: bytes, at: int, *, with_data: bool = True) -> LifecycleEvent:
    """The event whose body (current schema) begins at `at` of `data`; CodecError if the
    bytes hold no such event, or more than one. `with_data=False`: the event's data is
    skipped, unread (None)."""
    return LifecycleEvent(*_read(data, at, with_data))


def read_lifecycle_fields(data: bytes, at: int, *, with_data: bool = True) -> LifecycleFields:
    """`read_lifecycle_event`'s event as `LifecycleFields`."""
    return LifecycleFields._make(_read(data, at, with_data))


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
        return _fields(data, at, with_data)

    return read_whole(fields, data, at, "braidflow.LifecycleEvent")


def _fields(data: bytes, at: int, with_data: bool) -> tuple[tuple[Any, ...], int]:
    """The event's fields in `LifecycleEvent`'s order, and where the bytes after it begin.

    Each `["null", X]` union's branch is read in place (byte 0: null; 2, zigzag 1: an X), as
    is a string's one-byte length: a call for each took a tenth of the reading."""
    event_id, at = read_string(data, at)
    event_type, at = read_string(data, at)
    execution_id, at = read_string(data, at)
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
