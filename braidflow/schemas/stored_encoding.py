"""A stored execution's bytes, written here field by field, with the node runs it kept reused.

Every step writes the execution's state row whole. fastavro's `schemaless_writer` spent most of
its time finding its way through the schema and through the dicts built for it (a step's
encoding was 9% of a worker's CPU in a fan-out), so the current `braidflow.StoredExecution` is
written here in the schema's order, straight from the engine's dataclasses: a record is its
fields one after another, an array or a map its count, its items and a 0, a [null, X] union a
0 or a 2 and the X. A step changes a run or two and shares the others (the engine's state is
immutable: an unchanged run is the same object), so the bytes of a run kept from the previous
encoding are copied, not written again. Held transitions (a paused execution's) are a union of
every transition kind: fastavro writes those.

The result is byte for byte what fastavro writes for the whole record (a property test holds it
to that), so every reader and every schema version reads it as before. The writer knows the
schema it was written for by fingerprint (`WRITTEN_FOR`): for any other current schema,
fastavro writes the whole record, and a test fails until this module and `stored_reading` are
brought up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING

from fastavro import schemaless_writer

from braidflow.engine.frozen import quick_init
from braidflow.engine.messages import NodeError
from braidflow.engine.state import ExecutionState, ForeachProgress, NodeRun
from braidflow.schemas.avro_binary import avro_long
from braidflow.schemas.framing import CodecError
from braidflow.schemas.records import (
    TRANSITION,
    OutboxEntry,
    StoredExecution,
    _json,
    _state_json,
)
from braidflow.schemas.store import current_schema, fingerprint

if TYPE_CHECKING:
    from braidflow.schemas.codec import Codec

WRITTEN_FOR = bytes.fromhex("4dd56e942e2ec69c")
"""The fingerprint of the `braidflow.StoredExecution` schema this module and `stored_reading`
write and read. Changing the schema (a field, a record it holds, a transition kind): update
both, then this."""


@quick_init
@dataclass(frozen=True, slots=True)
class StoredEncoding:
    """The bytes of a stored execution, and where the bytes of its node runs lie in them.

    Node run `runs[i]` was written as `data[ends[i]:ends[i + 1]]`. `runs` is
    empty when nothing of the bytes is known to reuse (bytes of an older schema read from a
    table).
    """

    data: bytes
    runs: tuple[NodeRun, ...] = ()
    ends: tuple[int, ...] = ()


class StoredWriter:
    """Writes stored executions as `codec` does, reusing the bytes of node runs kept."""

    def __init__(self, codec: Codec[StoredExecution]) -> None:
        self._header = codec.header
        self._codec = codec
        self._by_hand = fingerprint(codec.schema) == WRITTEN_FOR
        self._transition = current_schema("braidflow.Transition")

    @property
    def by_hand(self) -> bool:
        """Whether the writer writes the current schema itself (else fastavro writes it all)."""
        return self._by_hand

    def encode(self, stored: StoredExecution, previous: StoredEncoding | None) -> StoredEncoding:
        """The framed bytes of `stored`, the step after `previous` (or None); CodecError if it
        does not fit the schema."""
        if not self._by_hand:
            return StoredEncoding(self._codec.encode(stored))
        try:
            return self._encode(stored, previous)
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise CodecError(f"cannot encode StoredExecution: {exc}") from exc

    def _encode(self, stored: StoredExecution, previous: StoredEncoding | None) -> StoredEncoding:
        s = stored.state
        out = bytearray(self._header)
        _string(out, s.execution_id)
        _string(out, s.workflow_id)
        out += avro_long(s.workflow_version)
        _string(out, s.status)
        out += avro_long(s.started_at)
        out += avro_long(s.updated_at)
        _optional_string(out, _state_json(s.input))
        _optional_string(out, _state_json(s.event))
        _optional_string(out, _state_json(s.output))
        _optional_error(out, s.error)
        _optional_long(out, s.completed_at)
        runs = tuple(s.nodes.values())
        ends: list[int] = []
        if runs:
            out += avro_long(len(runs))
            if previous is None or not previous.runs:
                for run in runs:
                    ends.append(len(out))
                    _node_run(out, run)
            else:
                # Where each run of `previous` lies, by the run's identity: `previous` holds
                # its runs, so none of their ids is reused while it is in use.
                index = {id(kept): i for i, kept in enumerate(previous.runs)}
                data, was = previous.data, previous.ends
                for run in runs:
                    ends.append(len(out))
                    i = index.get(id(run))
                    if i is None:
                        _node_run(out, run)
                    else:
                        out += data[was[i] : was[i + 1]]
            ends.append(len(out))
        out += _NULL
        self._rest(out, s)
        _outbox(out, stored.outbox)
        return StoredEncoding(bytes(out), runs, tuple(ends))

    def _rest(self, out: bytearray, s: ExecutionState) -> None:
        """The state's fields after `nodes`, in the schema's order."""
        joins = s.joins
        if joins:
            out += avro_long(len(joins))
            for join in joins.values():
                _string(out, join.node_id)
                _ints(out, join.taken)
                _ints(out, join.dead)
                out += _TRUE if join.fired else _FALSE
        out += _NULL
        timers = s.timers
        if timers:
            out += avro_long(len(timers))
            for timer_id, due in timers.items():
                _string(out, timer_id)
                out += avro_long(due)
        out += _NULL
        out += _TRUE if s.paused else _FALSE
        if s.held:
            # Rare (a paused execution's), and a union of every transition: fastavro writes them.
            out += avro_long(len(s.held))
            buffer = BytesIO()
            for transition in s.held:
                schemaless_writer(buffer, self._transition, TRANSITION.to_avro(transition))
            out += buffer.getvalue()
        out += _NULL
        parent = s.parent
        if parent is None:
            out += _NULL
        else:
            out += _PRESENT
            _string(out, parent.execution_id)
            _string(out, parent.workflow_id)
            _string(out, parent.node_id)
            out += avro_long(parent.depth)
            _optional_string(out, _json(parent.context))
            _optional_long(out, parent.item)
        children = s.children
        if children:
            out += avro_long(len(children))
            for node_id, child in children.items():
                _string(out, node_id)
                _string(out, child)
        out += _NULL
        if s.control:
            out += avro_long(len(s.control))
            for action in s.control:
                _string(out, action.action)
                _string(out, action.by)
                out += avro_long(action.at)
                _optional_string(out, action.node_id)
                _string(out, action.reason)
        out += _NULL
        if s.foreach:
            out += avro_long(len(s.foreach))
            for progress in s.foreach.values():
                _foreach(out, progress)
        out += _NULL
        if s.loops:
            out += avro_long(len(s.loops))
            for loop in s.loops.values():
                _string(out, loop.node_id)
                out += avro_long(loop.passes)
        out += _NULL
        _optional_string(out, _json(s.dept))
        _string(out, s.tenant)
        _optional_string(out, s.admission)
        _optional_string(out, s.traceparent)


_NULL = _FALSE = b"\x00"
_TRUE = b"\x01"
# A [null, X] union holding an X: its second branch.
_PRESENT = b"\x02"


def _string(out: bytearray, text: str) -> None:
    data = text.encode()
    out += avro_long(len(data))
    out += data


def _bytes(out: bytearray, data: bytes) -> None:
    out += avro_long(len(data))
    out += data


def _optional_string(out: bytearray, text: str | None) -> None:
    if text is None:
        out += _NULL
    else:
        out += _PRESENT
        _string(out, text)


def _optional_long(out: bytearray, n: int | None) -> None:
    if n is None:
        out += _NULL
    else:
        out += _PRESENT
        out += avro_long(n)


def _ints(out: bytearray, numbers: tuple[int, ...]) -> None:
    if numbers:
        out += avro_long(len(numbers))
        for n in numbers:
            out += avro_long(n)
    out += _NULL


def _error(out: bytearray, error: NodeError) -> None:
    _string(out, error.type)
    _string(out, error.message)
    _optional_string(out, error.node_id)


def _optional_error(out: bytearray, error: NodeError | None) -> None:
    if error is None:
        out += _NULL
    else:
        out += _PRESENT
        _error(out, error)


def _node_run(out: bytearray, run: NodeRun) -> None:
    _string(out, run.node_id)
    _string(out, run.status)
    out += avro_long(run.attempt)
    _optional_string(out, _state_json(run.input))
    _optional_string(out, _state_json(run.output))
    _optional_error(out, run.error)
    _optional_long(out, run.started_at)
    _optional_long(out, run.completed_at)
    if run.errors:
        out += avro_long(len(run.errors))
        for error in run.errors:
            _error(out, error)
    out += _NULL


def _foreach(out: bytearray, progress: ForeachProgress) -> None:
    _string(out, progress.node_id)
    out += avro_long(progress.attempt)
    out += avro_long(progress.total)
    out += avro_long(progress.next)
    _ints(out, progress.running)
    if progress.pending:
        out += avro_long(len(progress.pending))
        for index, output in progress.pending:
            out += avro_long(index)
            _optional_string(out, _json(output))
    out += _NULL
    if progress.failures:
        out += avro_long(len(progress.failures))
        for failure in progress.failures:
            out += avro_long(failure.index)
            _string(out, failure.type)
            _string(out, failure.message)
    out += _NULL
    out += avro_long(progress.chunks)
    out += avro_long(progress.failed)


def _outbox(out: bytearray, entries: tuple[OutboxEntry, ...]) -> None:
    """Avro's array of `entries`: its count, each entry's fields one after another, a 0.

    Written inline: a step stores each record it sends here, and calls per field were most
    of the time."""
    if entries:
        out += avro_long(len(entries))
        for entry in entries:
            kind = _KINDS.get(entry.kind)
            if kind is None:
                _string(out, entry.kind)
            else:
                out += kind
            record_id = entry.id.encode()
            out += avro_long(len(record_id))
            out += record_id
            value = entry.value
            out += avro_long(len(value))
            out += value
            topic, key, traceparent = entry.topic, entry.key, entry.traceparent
            if topic is None:
                out += _NULL
            else:
                out += _PRESENT
                _string(out, topic)
            if key is None:
                out += _NULL
            else:
                out += _PRESENT
                _bytes(out, key)
            if traceparent is None:
                out += _NULL
            else:
                out += _PRESENT
                _string(out, traceparent)
    out += _NULL


# The kinds of outbox entries, as Avro strings.
_KINDS = {
    kind: avro_long(len(kind)) + kind.encode()
    for kind in ("transition", "task", "event", "await", "dead_letter", "admission", "publish")
}
