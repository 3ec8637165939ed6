"""Large values of an execution state, kept in rows of their own beside the state row.

Every step writes the execution's state row again, to the table and to its
changelog. A large value held in it (a foreach's list of items, a task's big
output) was written again with every step: a foreach over 10,000 items wrote
its list 20,000 times, and a list over about half of `message.max.bytes` made
the row too large once it was both a task's output and the foreach's input.

So the inputs and outputs of the execution and of its node runs, from
`MIN_ROW_BYTES` of JSON up, go to rows of the executions table under
`<execution>/value/<digest of the JSON>`, and the state row names them
(`ValueRow`). A row is written once, when a step first holds its value; the
same value held twice (a task's output that is the next node's input) is one
row. Rows are written ahead of the state row that names them, to the same
changelog partition, so a state that reached the changelog never names a row
that did not; a row no longer named goes after the state row that dropped it.
The engine sees whole values only: states are filled in when loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from braidflow.engine import ExecutionState, NodeRun, ids
from braidflow.engine.frozen import quick_init
from braidflow.schemas import ValueRow, state_value_of, state_value_text

MIN_ROW_BYTES = 16 * 1024
"""From this size of JSON text up, a value leaves the state row."""


def value_key(execution_id: str, text: bytes) -> bytes:
    """The row of a value of an execution: the same value, the same row."""
    return ids.value_row_key(execution_id, hashlib.blake2b(text, digest_size=16).hexdigest())


class ValueTooLarge(Exception):
    """A value would be a row larger than a record may be; `what` names it."""

    def __init__(self, what: str, size: int) -> None:
        super().__init__(f"{what} would take {size:,} bytes")
        self.what = what
        self.size = size


class MissingValueRow(Exception):
    """A state names a value row the table does not hold."""


@quick_init
@dataclass(frozen=True, slots=True)
class Offloaded:
    """A state ready to store: its row form, and the rows to write ahead of it."""

    state: ExecutionState
    rows: Mapping[bytes, bytes]


@quick_init
@dataclass(frozen=True, slots=True)
class Loaded:
    """A stored state both ways: as the engine sees it, and as its row holds it."""

    state: ExecutionState
    row_form: ExecutionState


def named_rows(row_form: ExecutionState) -> frozenset[bytes]:
    """The value rows a state as stored names."""
    values = [row_form.input, row_form.output]
    for run in row_form.nodes.values():
        values += (run.input, run.output)
    return frozenset(v.key.encode() for v in values if type(v) is ValueRow)


def filled_in(row_form: ExecutionState, table: Mapping[bytes, bytes]) -> ExecutionState:
    """A state as stored, with every value it keeps in a row of its own read back.

    MissingValueRow if the table no longer holds one.
    """

    def value(held: Any) -> Any:
        if type(held) is not ValueRow:
            return held
        text = table.get(held.key.encode())
        if text is None:
            raise MissingValueRow(f"the state names value row {held.key!r}, which is gone")
        return state_value_of(text.decode())

    if not named_rows(row_form):
        return row_form
    nodes = {
        node_id: _with(run, value(run.input), value(run.output))
        for node_id, run in row_form.nodes.items()
    }
    return replace(
        row_form, input=value(row_form.input), output=value(row_form.output), nodes=nodes
    )


class ValueRows:
    """Decides which values of a state leave its row, and writes nothing twice."""

    def __init__(self, min_bytes: int = MIN_ROW_BYTES, max_row_bytes: int | None = None) -> None:
        self._min_bytes = min_bytes
        self._max_row_bytes = max_row_bytes

    def offload(
        self, state: ExecutionState, before: Loaded | None, table: Mapping[bytes, bytes]
    ) -> Offloaded:
        """The row form of `state`, the step after `before`; ValueTooLarge for a value no row
        can hold.

        A value the step kept from `before` (the same object) is held as it was,
        unmeasured: a step changes a node or two, and measuring means encoding.
        """
        execution_id = state.execution_id
        rows: dict[bytes, bytes] = {}
        moved = False

        def held(value: Any, was: Any, was_held: Any, what: str) -> Any:
            nonlocal moved
            if value is was:
                moved = moved or type(was_held) is ValueRow
                return was_held
            if type(value) not in (list, dict, str):
                return value
            text = state_value_text(value).encode()
            if len(text) < self._min_bytes:
                return value
            if self._max_row_bytes is not None and len(text) > self._max_row_bytes:
                raise ValueTooLarge(what, len(text))
            key = value_key(execution_id, text)
            if key not in table:
                rows[key] = text
            moved = True
            return ValueRow(key.decode())

        old = before.state if before is not None else None
        old_form = before.row_form if before is not None else None
        nodes = {}
        for node_id, run in state.nodes.items():
            old_run = old.nodes.get(node_id) if old is not None else None
            old_held = old_form.nodes.get(node_id) if old_form is not None else None
            if run is old_run and old_held is not None:
                # The very row form stored before: its Avro bytes are reused (stored_encoding).
                nodes[node_id] = old_held
                moved = moved or old_held is not run
                continue
            nodes[node_id] = _with(
                run,
                held(
                    run.input,
                    _field(old_run, "input"),
                    _field(old_held, "input"),
                    f"the input of node {node_id!r}",
                ),
                held(
                    run.output,
                    _field(old_run, "output"),
                    _field(old_held, "output"),
                    f"the output of node {node_id!r}",
                ),
            )
        row_input = held(
            state.input, _field(old, "input"), _field(old_form, "input"), "the execution's input"
        )
        row_output = held(
            state.output, _field(old, "output"), _field(old_form, "output"), "the output"
        )
        if not moved:
            return Offloaded(state, rows)
        return Offloaded(replace(state, input=row_input, output=row_output, nodes=nodes), rows)


# Stands for "nothing before": no value is this object, so every value is measured.
_NOTHING = object()


def _field(holder: Any, name: str) -> Any:
    return _NOTHING if holder is None else getattr(holder, name)


def _with(run: NodeRun, input: Any, output: Any) -> NodeRun:
    if input is run.input and output is run.output:
        return run
    return replace(run, input=input, output=output)
