"""A stored execution read in place reads as fastavro reads it: the same execution from any bytes
the current schema writes, and a CodecError from any bytes fastavro cannot read; and where its
node runs lie is known, for the next step to copy them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stored_execution_values import steps

from braidflow.engine.state import ExecutionState, NodeRun
from braidflow.schemas import (
    CodecError,
    StoredExecution,
    decode_stored,
    decode_stored_reusable,
    encode_stored,
    encode_stored_reusing,
    stored_encoding,
)
from braidflow.schemas.avro_binary import avro_long
from braidflow.schemas.codec import _stored, _stored_writer
from braidflow.schemas.store import fingerprint
from braidflow.schemas.stored_encoding import WRITTEN_FOR
from tests.unit.damaged_bytes import assert_read_as_fastavro, damage, outcome

HEADER = 10


def fastavro_read(data: bytes) -> StoredExecution | CodecError:
    return outcome(_stored.decode, data)


def read(data: bytes) -> StoredExecution | CodecError:
    return outcome(decode_stored, data)


def test_the_current_schema_is_the_one_written_and_read_by_hand() -> None:
    # Else fastavro writes and reads it all, correct but slow: bring stored_encoding and
    # stored_reading up to date with the schema, then WRITTEN_FOR.
    assert fingerprint(_stored.schema) == WRITTEN_FOR
    assert _stored_writer.by_hand


@settings(max_examples=60, deadline=None)
@given(steps())
def test_a_stored_execution_reads_as_fastavro_reads_it(
    step: tuple[StoredExecution, StoredExecution],
) -> None:
    for stored in step:
        data = encode_stored(stored)
        found, encoding = decode_stored_reusable(data)
        assert found == fastavro_read(data)
        assert encoding.data is data
        # Node ids are unique: every run read is offered, with its very bytes.
        runs = tuple(found.state.nodes.values())
        assert encoding.runs == runs
        for i, run in enumerate(runs):
            alone = encode_stored(StoredExecution(replace(found.state, nodes={run.node_id: run})))
            assert data[encoding.ends[i] : encoding.ends[i + 1]] in alone


@settings(max_examples=40, deadline=None)
@given(steps(), st.data())
def test_the_step_after_a_read_copies_the_runs_it_keeps_and_writes_fastavros_bytes(
    step: tuple[StoredExecution, StoredExecution], draw: st.DataObject
) -> None:
    first, second = step
    read_first, encoding = decode_stored_reusable(encode_stored(first))
    # The next step keeps some of the runs read (the same objects), and has second's others.
    kept = {
        node_id: run
        for node_id, run in read_first.state.nodes.items()
        if draw.draw(st.booleans(), label=f"keep {node_id}")
    }
    nodes = {**second.state.nodes, **kept}
    after = replace(second, state=replace(second.state, nodes=nodes))
    assert encode_stored_reusing(after, encoding).data == encode_stored(after)


@settings(max_examples=200, deadline=None)
@given(steps(), st.data())
def test_damaged_bytes_fail_where_fastavro_fails(
    step: tuple[StoredExecution, StoredExecution], draw: st.DataObject
) -> None:
    data = damage(encode_stored(step[0]), HEADER, draw)
    assert_read_as_fastavro(fastavro_read(data), read(data))


def a_stored_execution(*node_ids: str) -> StoredExecution:
    nodes = {node_id: NodeRun(node_id, "completed", 1, {"n": 1}, [1, 2]) for node_id in node_ids}
    return StoredExecution(ExecutionState("e1", "wf", 1, "running", 0, 1, {"n": 1}, nodes=nodes))


def test_runs_in_several_blocks_read_as_fastavro_reads_them_and_are_not_offered() -> None:
    # Avro lets a writer split an array into blocks, a negative count followed by the block's
    # size in bytes; fastavro and braidflow write one block, but another writer may not.
    stored = a_stored_execution("a", "b", "c")
    whole = encode_stored_reusing(stored, None)
    data, ends = whole.data, whole.ends
    runs = [data[ends[i] : ends[i + 1]] for i in range(3)]
    blocks = (
        avro_long(1)
        + runs[0]
        + avro_long(-2)
        + avro_long(len(runs[1]) + len(runs[2]))
        + runs[1]
        + runs[2]
    )
    split = data[: ends[0] - 1] + blocks + data[ends[3] :]
    found, encoding = decode_stored_reusable(split)
    assert found == fastavro_read(split) == stored
    assert encoding.runs == () and encoding.ends == ()
    assert encode_stored_reusing(found, encoding).data == data


def test_a_record_left_over_or_cut_short_is_a_codec_error() -> None:
    data = encode_stored(a_stored_execution("a"))
    for damaged in (data + b"\x00", data[:-1], data[: HEADER + 3]):
        assert isinstance(read(damaged), CodecError)
        assert isinstance(fastavro_read(damaged), CodecError)


def test_a_schema_the_writer_was_not_written_for_is_written_by_fastavro(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stored_encoding, "WRITTEN_FOR", b"\x00" * 8)
    writer = stored_encoding.StoredWriter(_stored)
    stored = a_stored_execution("a", "b")
    assert not writer.by_hand
    assert writer.encode(stored, None).data == encode_stored(stored)


def differing_byte(a: bytes, b: bytes) -> int:
    return next(at for at, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)


def test_odd_but_readable_bytes_read_as_fastavro_reads_them() -> None:
    stored = a_stored_execution("a")
    data = encode_stored(stored)
    # A boolean byte other than 0 or 1: fastavro reads any but 0 as true.
    paused = differing_byte(
        data, encode_stored(replace(stored, state=replace(stored.state, paused=True)))
    )
    odd_boolean = data[:paused] + b"\x05" + data[paused + 1 :]
    # A union's branch written in two bytes (0x80 0x00 is a long 0): the null branch.
    union = differing_byte(
        data, encode_stored(replace(stored, state=replace(stored.state, output=1)))
    )
    long_branch = data[:union] + b"\x80\x00" + data[union + 1 :]
    for odd in (odd_boolean, long_branch):
        expected = fastavro_read(odd)
        assert not isinstance(expected, CodecError)
        assert read(odd) == expected
    assert read(odd_boolean).state.paused
