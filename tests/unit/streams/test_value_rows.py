"""Large values of an execution state kept in rows of their own, with a dict as the table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from braidflow.engine import ExecutionState, NodeRun
from braidflow.schemas import StoredExecution, ValueRow, decode_stored, encode_stored
from braidflow.streams.value_rows import (
    Loaded,
    MissingValueRow,
    ValueRows,
    ValueTooLarge,
    filled_in,
    named_rows,
)

BIG = [{"n": i, "pad": "x" * 30} for i in range(1000)]  # about 40 KB of JSON


def state(**nodes: tuple[Any, Any]) -> ExecutionState:
    return ExecutionState(
        "e1",
        "wf",
        1,
        "running",
        0,
        0,
        input={"small": True},
        nodes={n: NodeRun(n, "completed", 1, i, o) for n, (i, o) in nodes.items()},
    )


def stored_round_trip(row_form: ExecutionState) -> ExecutionState:
    return decode_stored(encode_stored(StoredExecution(row_form))).state


def test_a_large_value_leaves_the_row_and_comes_back_whole() -> None:
    table: dict[bytes, bytes] = {}
    full = state(a=(None, BIG), b=(BIG, [1, 2]))
    offloaded = ValueRows().offload(full, None, table)
    # The task's output and the next node's input are one value: one row.
    assert len(offloaded.rows) == 1
    [key] = offloaded.rows
    assert key.startswith(b"e1/value/")
    a, b = offloaded.state.nodes["a"], offloaded.state.nodes["b"]
    assert a.output == ValueRow(key.decode()) == b.input
    assert b.output == [1, 2] and offloaded.state.input == {"small": True}
    table.update(offloaded.rows)
    row_form = stored_round_trip(offloaded.state)
    assert named_rows(row_form) == {key}
    assert filled_in(row_form, table) == full
    assert len(encode_stored(StoredExecution(row_form))) < 1000


def test_a_value_kept_by_the_step_is_not_written_again() -> None:
    table: dict[bytes, bytes] = {}
    rows = ValueRows()
    first = state(each=(BIG, None))
    offloaded = rows.offload(first, None, table)
    table.update(offloaded.rows)
    before = Loaded(first, stored_round_trip(offloaded.state))
    # The next step shares the list (the engine copies what it changes only).
    second = replace(first, nodes={"each": replace(first.nodes["each"], attempt=2)})
    again = rows.offload(second, before, table)
    assert again.rows == {}
    assert again.state.nodes["each"].input == before.row_form.nodes["each"].input
    # An equal list built anew is measured, but its row is already there.
    rebuilt = replace(first, nodes={"each": replace(first.nodes["each"], input=list(BIG))})
    assert rows.offload(rebuilt, before, table).rows == {}


def test_a_run_the_step_kept_keeps_its_stored_form_so_its_bytes_are_reused() -> None:
    table: dict[bytes, bytes] = {}
    rows = ValueRows()
    first = state(each=(BIG, None), small=(1, 2))
    offloaded = rows.offload(first, None, table)
    table.update(offloaded.rows)
    before = Loaded(first, offloaded.state)
    second = replace(
        first, nodes={**first.nodes, "small": replace(first.nodes["small"], attempt=2)}
    )
    again = rows.offload(second, before, table)
    # The very object stored before: the store copies its Avro bytes (stored_encoding).
    assert again.state.nodes["each"] is offloaded.state.nodes["each"]
    assert type(again.state.nodes["each"].input) is ValueRow
    assert again.state.nodes["small"] is second.nodes["small"]


def test_a_row_no_longer_named_is_known_to_go() -> None:
    table: dict[bytes, bytes] = {}
    rows = ValueRows()
    first = state(a=(None, BIG))
    offloaded = rows.offload(first, None, table)
    table.update(offloaded.rows)
    before = Loaded(first, offloaded.state)
    after = rows.offload(state(a=(None, "small now")), before, table)
    assert after.rows == {}
    assert named_rows(before.row_form) - named_rows(after.state) == set(offloaded.rows)


def test_small_values_stay_in_the_row() -> None:
    small = state(a=({"x": 1}, "y" * 100))
    offloaded = ValueRows().offload(small, None, {})
    assert offloaded.state is small and offloaded.rows == {}


def test_a_value_no_row_can_hold_is_refused_naming_it() -> None:
    with pytest.raises(ValueTooLarge) as refused:
        ValueRows(max_row_bytes=10_000).offload(state(a=(None, BIG)), None, {})
    assert refused.value.what == "the output of node 'a'"
    assert refused.value.size > 10_000


def test_a_missing_row_is_reported_not_filled_with_nothing() -> None:
    row_form = state(a=(None, ValueRow("e1/value/gone")))
    with pytest.raises(MissingValueRow, match="e1/value/gone"):
        filled_in(row_form, {})


def test_the_mark_cannot_be_a_users_value() -> None:
    # A user's string that looks like the mark is JSON text "\"@row:...\"", not the mark.
    looks_alike = state(a=(None, "@row:e1/value/x"))
    assert stored_round_trip(looks_alike) == looks_alike
