"""Bytes on a topic <-> the engine's dataclasses: Avro binary (fastavro) behind a framing header."""

from __future__ import annotations

from dataclasses import replace
from io import BytesIO
from typing import Generic, TypeVar, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from braidflow.engine.messages import (
    AwaitEvent,
    LifecycleEvent,
    TaskRequest,
    Transition,
)
from braidflow.engine.state import ExecutionState
from braidflow.schemas.framing import CodecError, Framing, SingleObjectFraming
from braidflow.schemas.lifecycle_reading import (
    LifecycleOutline,
    read_lifecycle_event,
    read_lifecycle_heading,
    read_lifecycle_outline,
)
from braidflow.schemas.lifecycle_writing import write_lifecycle_event
from braidflow.schemas.records import (
    ADMISSION,
    AWAIT_EVENT,
    EXECUTION_STATE,
    LIFECYCLE_EVENT,
    STORED_EXECUTION,
    TASK_REQUEST,
    TRANSITION,
    Admission,
    AvroRecord,
    RecordKind,
    StoredExecution,
)
from braidflow.schemas.store import SchemaStore, current_schema, fingerprint
from braidflow.schemas.stored_encoding import StoredEncoding, StoredWriter
from braidflow.schemas.stored_reading import read_stored
from braidflow.schemas.task_reading import read_task_request
from braidflow.schemas.task_writing import write_task_request
from braidflow.schemas.transition_coding import WRITTEN_FOR as TRANSITIONS_WRITTEN_FOR
from braidflow.schemas.transition_coding import read_transition, write_transition

T = TypeVar("T")


class Codec(Generic[T]):
    """Encodes one kind of record with its current schema; decodes any version the framing knows.

    All schema work (parsing, fingerprint or registry id) happens here, once:
    a call to `encode` or `decode` only converts the value and runs fastavro.
    """

    def __init__(self, kind: RecordKind[T], framing: Framing) -> None:
        self.kind = kind
        self.framing = framing
        self.schema = current_schema(kind.schema_name)
        self.header = framing.header(self.schema)
        self._to_avro = kind.to_avro
        self._from_avro = kind.from_avro

    def encode(self, value: T) -> bytes:
        """The framed Avro bytes of `value`; CodecError if it does not fit the schema."""
        buffer = BytesIO()
        buffer.write(self.header)
        try:
            schemaless_writer(buffer, self.schema, self._to_avro(value))
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(
                f"cannot encode {type(value).__name__} as {self.kind.schema_name}: {exc}"
            ) from exc
        return buffer.getvalue()

    def decode(self, data: bytes) -> T:
        """The value in `data`, read into the current schema; CodecError saying why it cannot be."""
        writer, start = self.framing.writer_schema(data)
        # Records written with the current schema skip fastavro's schema resolution.
        reader = None if writer is self.schema else self.schema
        buffer = BytesIO(data)
        buffer.seek(start)
        try:
            # fastavro types what it reads as any Avro value; a record schema reads a dict.
            record = cast(
                AvroRecord,
                schemaless_reader(
                    buffer,
                    writer,
                    reader,
                    # Name the branch of the Transition union; keep [null, record] unions plain.
                    return_record_name=True,
                    return_record_name_override=True,
                ),
            )
            value = self._from_avro(record)
        except EOFError as exc:
            raise CodecError(f"truncated {self.kind.schema_name}: {len(data)} bytes") from exc
        except SchemaResolutionError as exc:
            # fastavro's message prints both schemas in full: too long for a dead-letter reason.
            raise CodecError(
                f"cannot read a {writer.get('name')} as {self.kind.schema_name}:"
                " the writer schema does not resolve to the current one"
            ) from exc
        except Exception as exc:
            # Whatever the bytes make the reader raise, the record is poison, not a crash.
            raise CodecError(
                f"cannot decode {self.kind.schema_name} written with {writer.get('name')}:"
                f" {type(exc).__name__}: {exc}"
            ) from exc
        if buffer.tell() != len(data):
            raise CodecError(
                f"{len(data) - buffer.tell()} bytes left over after a {self.kind.schema_name}"
            )
        return value


STORE = SchemaStore.shipped()
"""The store the default codecs look writer schemas up in; `register` more at run time."""

_framing = SingleObjectFraming(STORE)
_transitions = Codec(TRANSITION, _framing)
_task_requests = Codec(TASK_REQUEST, _framing)
_lifecycle_events = Codec(LIFECYCLE_EVENT, _framing)
# A lifecycle event of the current schema, as nearly all are, is told by its header alone,
# without looking its fingerprint up: every worker reads each event two or three times.
_EVENT_HEADER = _lifecycle_events.header
_EVENT_BODY = len(_EVENT_HEADER)
_states = Codec(EXECUTION_STATE, _framing)
_stored = Codec(STORED_EXECUTION, _framing)
_stored_writer = StoredWriter(_stored)
_awaits = Codec(AWAIT_EVENT, _framing)
_transitions_by_hand = fingerprint(_transitions.schema) == TRANSITIONS_WRITTEN_FOR
_admissions = Codec(ADMISSION, _framing)


def encode_admission(admission: Admission) -> bytes:
    """A value for the admissions topic."""
    return _admissions.encode(admission)


def decode_admission(data: bytes) -> Admission:
    """A request or release from the admissions topic; CodecError if undecodable."""
    return _admissions.decode(data)


def encode_transition(transition: Transition) -> bytes:
    """A value for the transitions topic; CodecError if it does not fit the schema."""
    if _transitions_by_hand:
        try:
            body = write_transition(transition)
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise CodecError(
                f"cannot encode {type(transition).__name__} as braidflow.Transition: {exc}"
            ) from exc
        if body is not None:
            return _transitions.header + body
    return _transitions.encode(transition)


def decode_transition(data: bytes) -> Transition:
    """A transition from the transitions topic; CodecError if undecodable."""
    writer, start = _framing.writer_schema(data)
    if writer is _transitions.schema and _transitions_by_hand:
        transition = read_transition(data, start)
        if transition is not None:
            return transition
    return _transitions.decode(data)


def encode_task(task: TaskRequest) -> bytes:
    """A value for a tasks topic; CodecError if it does not fit the schema."""
    try:
        return _task_requests.header + write_task_request(task)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode TaskRequest as braidflow.TaskRequest: {exc}") from exc


def decode_task(data: bytes) -> TaskRequest:
    """A task request from a tasks topic; CodecError if undecodable."""
    writer, start = _framing.writer_schema(data)
    if writer is _task_requests.schema:
        return read_task_request(data, start)
    return _task_requests.decode(data)


def encode_event(event: LifecycleEvent) -> bytes:
    """A value for the lifecycle topic; CodecError if it does not fit the schema."""
    try:
        return _lifecycle_events.header + write_lifecycle_event(event)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(
            f"cannot encode LifecycleEvent as braidflow.LifecycleEvent: {exc}"
        ) from exc


def decode_event(data: bytes, *, with_data: bool = True) -> LifecycleEvent:
    """A lifecycle event from the lifecycle topic; CodecError if undecodable.

    `with_data=False`, for readers that never look at an event's data: it is left out (None),
    unread: a task's output is most of a large event, and JSON is slow to read. Then a record
    whose data alone is broken still reads."""
    if data.startswith(_EVENT_HEADER):
        return read_lifecycle_event(data, _EVENT_BODY, with_data=with_data)
    event = _lifecycle_events.decode(data)
    return event if with_data else replace(event, data=None)


def decode_event_outline(data: bytes) -> LifecycleOutline:
    """What the lifecycle event in `data` says but its ids and data (`LifecycleOutline`), for
    readers that count events; CodecError if undecodable. Of the current schema, the ids and
    the data are passed over unread (`read_lifecycle_outline`)."""
    if data.startswith(_EVENT_HEADER):
        return read_lifecycle_outline(data, _EVENT_BODY)
    event = decode_event(data, with_data=False)
    return LifecycleOutline._make(getattr(event, name) for name in LifecycleOutline._fields)


def event_heading(data: bytes) -> tuple[str, str] | None:
    """The id and type of a lifecycle event written with the current schema, its two first
    fields, without reading the rest; None for any other bytes (older schemas included)."""
    if data.startswith(_EVENT_HEADER):
        return read_lifecycle_heading(data, _EVENT_BODY)
    return None


def encode_state(state: ExecutionState) -> bytes:
    """A value for the executions table (and its changelog topic)."""
    return _states.encode(state)


def decode_state(data: bytes) -> ExecutionState:
    """An execution state from the executions table; CodecError if undecodable."""
    return _states.decode(data)


def encode_await(registration: AwaitEvent) -> bytes:
    """A wait registration for the waits topic."""
    return _awaits.encode(registration)


def decode_await(data: bytes) -> AwaitEvent:
    """A wait registration from the waits topic; CodecError if undecodable."""
    return _awaits.decode(data)


def encode_stored(stored: StoredExecution) -> bytes:
    """A value for the executions table: the state and its outbox."""
    return _stored.encode(stored)


def encode_stored_reusing(
    stored: StoredExecution, previous: StoredEncoding | None
) -> StoredEncoding:
    """`encode_stored`'s bytes, with those of the node runs `stored` shares with `previous`
    (the encoding of the step before) copied rather than written again."""
    return _stored_writer.encode(stored, previous)


def decode_stored(data: bytes) -> StoredExecution:
    """A value of the executions table; CodecError if undecodable."""
    return decode_stored_reusable(data)[0]


def decode_stored_reusable(data: bytes) -> tuple[StoredExecution, StoredEncoding]:
    """`decode_stored`, with `data` as the encoding the next step's `encode_stored_reusing`
    copies the node runs it keeps from (where they lie is known when `data` has the current
    schema, which is read in place)."""
    writer, start = _framing.writer_schema(data)
    if writer is _stored.schema and _stored_writer.by_hand:
        return read_stored(data, start)
    return _stored.decode(data), StoredEncoding(data)
