"""One execution's step as a transaction of the execution store, with plain dicts as tables:
loaded, staged, refused before any write when it cannot be stored, committed in order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from braidflow.config import Topics
from braidflow.engine import (
    CollectItems,
    ExecutionState,
    ItemsChunk,
    ItemsCollected,
    LifecycleEvent,
    NodeRun,
    StartExecution,
    StepResult,
    TimerFired,
)
from braidflow.engine.ids import timer_key
from braidflow.engine.trace_context import ExecutionTrace
from braidflow.schemas import decode_stored, decode_transition, encode_stored
from braidflow.streams.execution_store import (
    DECODED_PER_ROW_BYTE,
    ExecutionStore,
    Unreadable,
    Unstorable,
)
from braidflow.streams.items import chunk_key
from braidflow.streams.outbox import Outbox
from braidflow.streams.timers import TimerTable
from braidflow.streams.value_rows import named_rows

T0 = 1_795_000_000_000
KEY = b"e1"
BIG = [{"n": i, "pad": "x" * 30} for i in range(1000)]  # about 40 KB of JSON: a value row
START = StartExecution("e1/start", "e1", T0, "wf", 1, {"n": 1})
STARTED = LifecycleEvent("e1/workflow.started", "workflow.started", "e1", "wf", 1, T0)


class Journal(dict[bytes, bytes]):
    """A table that remembers the order of its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, bytes]] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes.append(("set", key))
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.writes.append(("del", key))
        super().__delitem__(key)

    def pop(self, key: bytes, default: Any = None) -> Any:
        self.writes.append(("del", key))
        return super().pop(key, default)


class Parts:
    """A store over plain dicts: the executions table, the timers table, what was sent."""

    def __init__(self, max_row_bytes: int = 900_000, decoded_bytes: int = 16 << 20) -> None:
        self.table = Journal()
        self.timer_rows: dict[bytes, bytes] = {}
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.outbox = Outbox(Topics("bf"), self._send)
        timers = TimerTable(self.timer_rows, lambda: {})
        self.store = ExecutionStore(
            self.outbox,
            timers,
            events_prefix="events.",
            max_row_bytes=max_row_bytes,
            decoded_bytes=decoded_bytes,
        )

    async def _send(
        self, topic: str, key: bytes, value: bytes, headers: Any
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def written(self) -> tuple[dict[bytes, bytes], dict[bytes, bytes], int]:
        return dict(self.table), dict(self.timer_rows), len(self.sent)


def state(status: str = "running", **changes: Any) -> ExecutionState:
    return ExecutionState("e1", "wf", 1, status, T0, T0, **changes)


async def test_a_step_is_staged_and_written_at_commit_with_its_outbox() -> None:
    parts = Parts()
    execution = parts.store.begin(KEY, parts.table)
    assert execution.state is None
    new = state(input={"n": 1})
    execution.stage(START, StepResult(new, (STARTED,)))
    assert parts.written() == ({}, {}, 0)
    await execution.commit()
    row = decode_stored(parts.table[KEY])
    assert row.state == new
    assert [entry.id for entry in row.outbox] == ["e1/workflow.started"]
    assert parts.sent == [("bf.lifecycle", KEY, row.outbox[0].value)]
    assert [entry.id for entry in execution.emitted] == ["e1/workflow.started"]


async def test_the_next_transaction_loads_what_was_committed_also_on_another_worker() -> None:
    parts = Parts()
    first = parts.store.begin(KEY, parts.table)
    new = state(input=BIG)
    first.stage(START, StepResult(new, ()))
    await first.commit()
    assert parts.store.begin(KEY, parts.table).state == new
    # Another worker has nothing decoded: the state row and its value row are read back.
    other = Parts()
    other.table.update(parts.table)
    assert other.store.begin(KEY, other.table).state == new


async def test_decoded_executions_are_kept_within_a_memory_bound_the_oldest_read_again() -> None:
    # 10,000 decoded parked executions took 41 MiB: the bound is on memory, not executions.
    async def started(parts: Parts) -> dict[bytes, ExecutionState]:
        states = {}
        for key in (b"e1", b"e2"):
            execution = parts.store.begin(key, parts.table)
            states[key] = replace(state(input={"n": 1}), execution_id=key.decode())
            execution.stage(START, StepResult(states[key], ()))
            await execution.commit()
        return states

    roomy = Parts()
    kept = await started(roomy)
    assert all(roomy.store.begin(key, roomy.table).state is kept[key] for key in kept)
    one = (1 + DECODED_PER_ROW_BYTE) * len(roomy.table[b"e1"])
    tight = Parts(decoded_bytes=one)
    kept = await started(tight)
    assert tight.store.begin(b"e2", tight.table).state is kept[b"e2"]
    again = tight.store.begin(b"e1", tight.table).state
    assert again == kept[b"e1"] and again is not kept[b"e1"]


async def test_steps_that_keep_node_runs_write_the_row_a_whole_encoding_writes() -> None:
    parts = Parts()
    fetch = NodeRun("fetch", "completed", 1, {"n": 1}, BIG, started_at=T0)
    nodes = {"fetch": fetch, "notify": NodeRun("notify", "running", 1, started_at=T0)}
    for attempt in (1, 2, 3):
        execution = parts.store.begin(KEY, parts.table)
        # Each step keeps `fetch` (the same object) and changes `notify`.
        nodes = {**nodes, "notify": NodeRun("notify", "running", attempt, {"try": attempt})}
        new = replace(state(input={"n": 1}, nodes=nodes), updated_at=T0 + attempt)
        execution.stage(START, StepResult(new, (STARTED,)))
        await execution.commit()
        row = parts.table[KEY]
        assert row == encode_stored(decode_stored(row))
        assert parts.store.begin(KEY, parts.table).state == new
        other = Parts()
        other.table.update(parts.table)
        assert other.store.begin(KEY, other.table).state == new


async def test_value_rows_and_timers_are_written_with_the_state_row_ahead_of_it() -> None:
    parts = Parts()
    execution = parts.store.begin(KEY, parts.table)
    chunk = ItemsChunk("e1", "each", 1, 0, (1, 2))
    new = state(input=BIG, timers={"nap": T0 + 1000})
    execution.stage(START, StepResult(new, (chunk,)))
    await execution.commit()
    [value_key] = named_rows(decode_stored(parts.table[KEY]).state)
    assert parts.table.writes == [
        ("set", chunk_key("e1", "each", 1, 0)),
        ("set", value_key),
        ("set", KEY),
    ]
    # The row keeps the header its TimerFired will carry: the execution's span.
    header = ExecutionTrace.of("e1", None).header.encode()
    assert parts.timer_rows == {timer_key(T0 + 1000, "e1", "nap"): header}

    # The next step lets go of both: the timer row goes, the value row after the state row.
    parts.table.writes.clear()
    execution = parts.store.begin(KEY, parts.table)
    fired = TimerFired("e1/nap/fired", "e1", T0 + 1000, "nap")
    execution.stage(fired, StepResult(state(input={"small": True}), ()))
    await execution.commit()
    assert parts.timer_rows == {}
    assert parts.table.writes == [("set", KEY), ("del", value_key)]
    assert value_key not in parts.table


async def test_an_unstorable_step_is_refused_before_anything_is_written() -> None:
    parts = Parts(max_row_bytes=20_000)
    before = parts.store.begin(KEY, parts.table)
    before.stage(START, StepResult(state(input={"n": 1}), ()))
    await before.commit()
    written = parts.written()

    execution = parts.store.begin(KEY, parts.table)
    fired = TimerFired("e1/t/fired", "e1", T0, "t")
    chunk = ItemsChunk("e1", "each", 1, 0, (1, 2))
    # The state row would pass the limit: its chunk, timer and records must not be written.
    too_large = state(input={"n": 1}, event={"a": "y" * 30_000}, timers={"t": T0 + 5})
    with pytest.raises(Unstorable) as refused:
        execution.stage(fired, StepResult(too_large, (chunk, STARTED)))
    assert refused.value.error.type == "StateTooLarge"
    assert "over the 20,000 a record may hold" in refused.value.error.message
    assert parts.written() == written

    # A value too large for a row of its own is refused the same way.
    with pytest.raises(Unstorable) as refused:
        execution.stage(fired, StepResult(state(input=BIG), (chunk,)))
    assert "the execution's input would be" in refused.value.error.message
    assert parts.written() == written

    # What fails the step in its place is staged instead, and only it is written.
    failed = state(input={"n": 1}, status="failed")
    execution.stage(fired, StepResult(failed, ()))
    await execution.commit()
    assert decode_stored(parts.table[KEY]).state == failed
    assert chunk_key("e1", "each", 1, 0) not in parts.table
    assert parts.timer_rows == {}


async def test_a_chunk_over_the_row_limit_refuses_the_step_with_no_chunk_written() -> None:
    parts = Parts(max_row_bytes=1000)
    execution = parts.store.begin(KEY, parts.table)
    chunks = (
        ItemsChunk("e1", "each", 1, 0, ("x" * 300,)),
        ItemsChunk("e1", "each", 1, 1, ("x" * 600, "y" * 600)),
    )
    with pytest.raises(Unstorable) as refused:
        execution.stage(START, StepResult(state(), chunks))
    assert "a chunk of its foreach results would be" in refused.value.error.message
    assert parts.written() == ({}, {}, 0)


async def test_a_chunk_staged_is_collected_in_the_same_step() -> None:
    parts = Parts()
    execution = parts.store.begin(KEY, parts.table)
    chunk = ItemsChunk("e1", "each", 1, 0, ("a", "b"))
    collect = CollectItems("e1/each/1/collect", "e1", T0, "each", 1, 2, 1)
    execution.stage(START, StepResult(state(), (chunk, collect)))
    assert parts.written() == ({}, {}, 0)
    await execution.commit()
    [entry] = execution.emitted
    answer = decode_transition(entry.value)
    assert isinstance(answer, ItemsCollected) and answer.results == ("a", "b")


async def test_nothing_is_written_when_the_record_ends_in_an_exception_before_commit() -> None:
    parts = Parts()
    with pytest.raises(RuntimeError):
        execution = parts.store.begin(KEY, parts.table)
        execution.stage(START, StepResult(state(input=BIG, timers={"t": T0}), (STARTED,)))
        raise RuntimeError("the engine's caller failed")
    assert parts.written() == ({}, {}, 0)


async def test_an_ignored_transition_writes_the_same_rows_again_and_resends_the_outbox() -> None:
    parts = Parts()
    execution = parts.store.begin(KEY, parts.table)
    execution.stage(START, StepResult(state(input=BIG), (STARTED,)))
    await execution.commit()
    await asyncio.sleep(0)  # the broker's acknowledgement
    rows = dict(parts.table)
    parts.table.writes.clear()
    parts.timer_rows[timer_key(T0, "e1", "gone")] = b"gone"

    again = parts.store.begin(KEY, parts.table)
    again.stage_unchanged(TimerFired("e1/gone/fired", "e1", T0, "gone"))
    await again.commit()
    [value_key] = named_rows(decode_stored(rows[KEY]).state)
    assert parts.table.writes == [("set", value_key), ("set", KEY)]
    assert dict(parts.table) == rows
    # A timer the state no longer holds loses its row, or it would fire for ever.
    assert parts.timer_rows == {}
    # Acknowledged by now: nothing left to send again, and a resend is not an emission.
    assert len(parts.sent) == 1 and again.emitted == ()


async def test_an_unacknowledged_record_is_sent_again_by_an_ignored_transition() -> None:
    parts = Parts()
    execution = parts.store.begin(KEY, parts.table)
    execution.stage(START, StepResult(state(), (STARTED,)))
    await execution.commit()
    # This worker restarted: it has seen no acknowledgement.
    restarted = Parts()
    restarted.table.update(parts.table)
    again = restarted.store.begin(KEY, restarted.table)
    again.stage_unchanged(START)
    await again.commit()
    assert restarted.sent == parts.sent


async def test_a_transaction_commits_once() -> None:
    parts = Parts()
    execution = parts.store.begin(KEY, parts.table)
    with pytest.raises(RuntimeError, match="nothing is staged"):
        await execution.commit()
    execution.stage(START, StepResult(state(), ()))
    await execution.commit()
    with pytest.raises(RuntimeError, match="committed already"):
        await execution.commit()


def test_an_unreadable_row_is_refused_with_the_reason() -> None:
    parts = Parts()
    parts.table[KEY] = b"not avro"
    with pytest.raises(Unreadable, match="the stored execution is unreadable"):
        parts.store.begin(KEY, parts.table)
