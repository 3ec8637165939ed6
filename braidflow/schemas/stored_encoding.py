"""A stored execution's bytes, written again for each step with the node runs it kept reused.

Every step writes the execution's state row whole, and encoding its node runs
was most of that work, though a step changes a run or two and shares the
others (the engine's state is immutable: an unchanged run is the same object).
Avro writes a record as its fields one after another, and an array as its
count, its items and a 0, so the bytes of a StoredExecution are: the state's
fields before `nodes`, the nodes array, then the state's fields after it and
the outbox. Those two stretches of the state are written by fastavro with
schemas cut from StoredExecution's; each node run is written alone, or its
bytes are copied from the previous encoding when the run is the very object
written there. The outbox is written here: its entries are strings, bytes and
optional ones, and fastavro took 10 - 20 µs an entry, a third of a parked
execution's row (its start's two lifecycle events).
The result is byte for byte what fastavro writes for the whole record (a
property test holds it to that), so every reader and every schema version
reads it as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any

from fastavro import parse_schema, schemaless_writer

from braidflow.engine.state import NodeRun
from braidflow.schemas.framing import CodecError
from braidflow.schemas.lifecycle_writing import avro_long
from braidflow.schemas.records import (
    NODE_RUN,
    OutboxEntry,
    StoredExecution,
    execution_state_but_nodes,
)
from braidflow.schemas.store import Schema

if TYPE_CHECKING:
    from braidflow.schemas.codec import Codec


@dataclass(frozen=True, slots=True)
class StoredEncoding:
    """The bytes of a stored execution, and where the bytes of its node runs lie in them.

    Node run `runs[i]` was written as `data[ends[i]:ends[i + 1]]`. `runs` is
    empty for bytes read from a table: nothing of them is known to reuse.
    """

    data: bytes
    runs: tuple[NodeRun, ...] = ()
    ends: tuple[int, ...] = ()


class StoredWriter:
    """Writes stored executions as `codec` does, reusing the bytes of node runs kept."""

    def __init__(self, codec: Codec[StoredExecution]) -> None:
        schema = codec.schema
        named: dict[str, Schema] = schema["__named_schemas"]
        fields = {field["name"]: field for field in schema["fields"]}
        state = fields["state"]["type"]
        if isinstance(state, str):
            state = named[state]
        state_fields = state["fields"]
        at = next(i for i, field in enumerate(state_fields) if field["name"] == "nodes")
        node_run = state_fields[at]["type"]["items"]
        if isinstance(node_run, str):
            node_run = named[node_run]
        # The outbox follows the state and is written by `_outbox`, to the schema it checks.
        assert [field["name"] for field in schema["fields"]] == ["state", "outbox"]
        assert _outbox_fields(fields["outbox"]["type"]["items"], named) == _OUTBOX_ENTRY
        self._header = codec.header
        self._before = self._cut(f"{state['name']}Before", state_fields[:at], named)
        self._after = self._cut(f"{state['name']}After", state_fields[at + 1 :], named)
        self._node_run = parse_schema(node_run, dict(named))
        self._node_run_record = NODE_RUN.to_avro

    @staticmethod
    def _cut(name: str, fields: list[dict[str, Any]], named: dict[str, Schema]) -> Schema:
        return parse_schema({"type": "record", "name": name, "fields": fields}, dict(named))

    def encode(self, stored: StoredExecution, previous: StoredEncoding | None) -> StoredEncoding:
        """The framed bytes of `stored`, the step after `previous` (or None); CodecError if it
        does not fit the schema."""
        try:
            return self._encode(stored, previous)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"cannot encode StoredExecution: {exc}") from exc

    def _encode(self, stored: StoredExecution, previous: StoredEncoding | None) -> StoredEncoding:
        record = execution_state_but_nodes(stored.state)
        buffer = BytesIO()
        buffer.write(self._header)
        schemaless_writer(buffer, self._before, record)
        runs = tuple(stored.state.nodes.values())
        ends: list[int] = []
        if runs:
            buffer.write(avro_long(len(runs)))
            kept = _kept_runs(previous)
            for run in runs:
                ends.append(buffer.tell())
                written = kept.get(id(run))
                if written is None:
                    schemaless_writer(buffer, self._node_run, self._node_run_record(run))
                else:
                    buffer.write(written)
            ends.append(buffer.tell())
        buffer.write(b"\x00")
        schemaless_writer(buffer, self._after, record)
        _outbox(buffer, stored.outbox)
        return StoredEncoding(buffer.getvalue(), runs, tuple(ends))


def _kept_runs(previous: StoredEncoding | None) -> dict[int, memoryview]:
    """The bytes of each node run of `previous`, by the run's identity.

    `previous` holds its runs, so none of their ids is reused while it is in use.
    """
    if previous is None:
        return {}
    data, ends = memoryview(previous.data), previous.ends
    return {id(run): data[ends[i] : ends[i + 1]] for i, run in enumerate(previous.runs)}


_OUTBOX_ENTRY = [
    ("kind", "string"),
    ("id", "string"),
    ("value", "bytes"),
    ("topic", ["null", "string"]),
    ("key", ["null", "bytes"]),
    ("traceparent", ["null", "string"]),
]
"""The fields of an outbox entry, in order, as `_outbox` writes them."""


def _outbox_fields(entry: Any, named: dict[str, Schema]) -> list[tuple[str, Any]]:
    if isinstance(entry, str):
        entry = named[entry]
    return [(field["name"], field["type"]) for field in entry["fields"]]


def _outbox(buffer: BytesIO, entries: tuple[OutboxEntry, ...]) -> None:
    """Avro's array of `entries` (see `_OUTBOX_ENTRY`): its count, each entry's fields one after
    another, a 0. A string is its UTF-8 length and bytes; an optional one a 0 for null, else a
    2 (the union's second branch) and the value."""
    if entries:
        buffer.write(avro_long(len(entries)))
        write = buffer.write
        for entry in entries:
            for text in (entry.kind, entry.id):
                _bytes(write, text.encode())
            _bytes(write, entry.value)
            for optional in (entry.topic, entry.key, entry.traceparent):
                if optional is None:
                    write(b"\x00")
                else:
                    write(b"\x02")
                    _bytes(write, optional.encode() if isinstance(optional, str) else optional)
    buffer.write(b"\x00")


def _bytes(write: Any, data: bytes) -> None:
    write(avro_long(len(data)))
    write(data)
