"""A stored execution written from pieces, node runs kept from the step before copied: always the
very bytes fastavro writes for the whole record."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from stored_execution_values import steps

from braidflow.engine.messages import NodeError
from braidflow.engine.state import ExecutionState, NodeRun
from braidflow.schemas import (
    OutboxEntry,
    StoredEncoding,
    StoredExecution,
    decode_stored,
    encode_stored,
    encode_stored_reusing,
)


@settings(max_examples=60, deadline=None)
@given(steps())
def test_a_stored_execution_written_from_pieces_is_what_fastavro_writes_for_it(
    step: tuple[StoredExecution, StoredExecution],
) -> None:
    first, second = step
    # first, second, first again: each reuses what the one before wrote, and only that.
    encoding: StoredEncoding | None = None
    for stored in (first, second, first):
        encoding = encode_stored_reusing(stored, encoding)
        assert encoding.data == encode_stored(stored)
    # From bytes read from a table nothing is known to reuse: all is written.
    assert encode_stored_reusing(second, StoredEncoding(encoding.data)).data == encode_stored(
        second
    )


def a_state(**runs: NodeRun) -> ExecutionState:
    return ExecutionState("e1", "wf", 1, "running", 0, 1, input={"n": 1}, nodes=runs)


def test_the_bytes_of_a_run_the_step_kept_are_copied_not_written_again() -> None:
    kept = NodeRun("fetch", "completed", 1, {"n": 1}, {"ok": True})
    first = encode_stored_reusing(StoredExecution(a_state(fetch=kept)), None)
    # Stand other bytes in for the kept run's: a copy shows in the result, a rewrite would not.
    other = NodeRun("fetch", "failed", 7, None, None, NodeError("E", "boom"))
    forged = encode_stored_reusing(StoredExecution(a_state(fetch=other)), None)
    stand_in = StoredEncoding(forged.data, (kept,), forged.ends)
    step = StoredExecution(a_state(fetch=kept, notify=NodeRun("notify", "running", 1)))
    nodes = decode_stored(encode_stored_reusing(step, stand_in).data).state.nodes
    assert nodes["fetch"] == other
    assert nodes["notify"] == NodeRun("notify", "running", 1)
    # An equal run that is another object is written anew: only the very object is known.
    equal = replace(kept)
    assert (
        decode_stored(
            encode_stored_reusing(StoredExecution(a_state(fetch=equal)), stand_in).data
        ).state.nodes["fetch"]
        == kept
    )
    assert first.runs == (kept,)


def test_a_state_without_node_runs_is_written_with_an_empty_array() -> None:
    stored = StoredExecution(a_state(), (OutboxEntry("task", "t1", b"\x00\x01"),))
    written = encode_stored_reusing(stored, None)
    assert written.data == encode_stored(stored)
    assert written.runs == () and written.ends == ()
    assert decode_stored(written.data) == stored


def test_a_count_of_runs_over_one_byte_is_written_as_avro_writes_it() -> None:
    nodes = {f"n{i}": NodeRun(f"n{i}", "completed", 1, i) for i in range(300)}
    first = StoredExecution(a_state(**nodes))
    written = encode_stored_reusing(first, None)
    assert written.data == encode_stored(first)
    nodes["n7"] = NodeRun("n7", "failed", 2)
    second = StoredExecution(a_state(**nodes))
    assert encode_stored_reusing(second, written).data == encode_stored(second)
