"""The execution store: everything one step reads and writes, as one transaction per record
(or per run of one execution's records applied together, `stage_steps`).

A step of an execution changes several things that must land together and in a
fixed order: the chunk rows of foreach results, the value rows its state names,
the rows of the timers table, the state row itself (with its outbox), and the
records it sends. `ExecutionStore.begin` loads the execution and opens an
`ExecutionTransaction`; `stage` (or `stage_unchanged`, for a transition the
engine ignored) prepares all of it, and refuses a step that cannot be stored
(`Unstorable`) before anything is written; `commit` writes what is staged:

1. chunk rows (written and dropped), then the timers table's rows;
2. value rows, ahead of the state row that names them: the same changelog
   partition, so a state that reached the changelog never names a row that did not;
3. the state row: one table write per transaction;
4. value rows the new state no longer names, after it;
5. the records the step emitted, once the state that keeps them in its outbox
   is written (at least once: they are sent again until acknowledged).

Until `commit`, nothing reaches a table: an exception anywhere before it leaves
every table as it was. The model is quixstreams' `PartitionTransaction`
(reads see the transaction's own writes; a transaction commits once).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace

from braidflow.engine import ExecutionState, NodeError, StepResult, TimerFired, Transition
from braidflow.engine.frozen import quick_init
from braidflow.engine.trace_context import (
    execution_trace,
    record_traceparent,
    timer_traceparent,
)
from braidflow.schemas import (
    CodecError,
    OutboxEntry,
    StoredEncoding,
    StoredExecution,
    decode_stored_reusable,
    encode_stored_reusing,
)
from braidflow.schemas.cloudevents import CloudEventError
from braidflow.streams.items import ChunkTooLarge, ItemStore
from braidflow.streams.outbox import Outbox, outbox_entry
from braidflow.streams.timers import DueTimer, TimerTable
from braidflow.streams.value_rows import (
    Loaded,
    MissingValueRow,
    ValueRows,
    ValueTooLarge,
    filled_in,
    named_rows,
)

# Memory the decoded executions a worker keeps may take; see `ExecutionStore.begin`. By
# bytes, not executions: 10,000 parked executions (rows of 800 B) took 41 MiB decoded.
DECODED_CACHE_BYTES = 16 * 1024 * 1024
# What a decoded execution takes per byte of its row, about (the one above: 5.1).
DECODED_PER_ROW_BYTE = 5


class Unstorable(Exception):
    """A step whose row or records cannot be written; `error` says why.

    `result_to_blame`: what the transition brought made it so, and failing the
    node it reports on is the fitting answer.
    """

    def __init__(self, error: NodeError, *, result_to_blame: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.result_to_blame = result_to_blame


class Unreadable(Exception):
    """The stored execution cannot be read back; the message says why."""


class ChunkRows:
    """The executions table as a step's chunk rows see it (an `items.ChunkTable`): the step's
    own writes first, held until the commit.

    A step may flush the last chunk and collect the results at once, so the
    collection must read a chunk that is only staged.
    """

    __slots__ = ("_table", "changes")

    def __init__(self, table: Mapping[bytes, bytes]) -> None:
        self._table = table
        # Key to its new bytes, or None for a row to drop; in the order staged.
        self.changes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.changes:
            return self.changes[key]
        return self._table.get(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.changes[key] = value

    def pop(self, key: bytes, default: None = None) -> bytes | None:
        value = self.get(key)
        self.changes[key] = None
        return value


@quick_init
@dataclass(frozen=True, slots=True)
class _Staged:
    """What a commit writes and sends, in the order it does."""

    chunk_rows: Mapping[bytes, bytes | None]
    timers_deleted: tuple[DueTimer, ...]
    # Each with the traceparent its TimerFired will carry.
    timers_set: tuple[tuple[DueTimer, str], ...]
    value_rows: Mapping[bytes, bytes]
    encoded: StoredEncoding | None
    dropped_rows: frozenset[bytes]
    # What the step emitted, or (when the state did not change) what is sent again.
    sends: Sequence[OutboxEntry]
    # The new state both ways, to keep decoded; None when the state did not change.
    kept: tuple[StoredExecution, Loaded] | None


_NOTHING = _Staged({}, (), (), {}, None, frozenset(), (), None)


class ExecutionStore:
    """The executions table, the timers table and the outbox, as one execution's steps use them.

    Keeps recently used executions decoded (and filled in from their value
    rows); the table stays the truth: a decoded state is used only while the
    table still holds exactly the bytes it was decoded from, so a rebalance or
    a restore can never serve a stale state.
    """

    def __init__(
        self,
        outbox: Outbox,
        timers: TimerTable | None,
        *,
        events_prefix: str,
        max_row_bytes: int,
        decoded_bytes: int = DECODED_CACHE_BYTES,
    ) -> None:
        self.outbox = outbox
        self.timers = timers
        self.events_prefix = events_prefix
        self.max_row_bytes = max_row_bytes
        self.items = ItemStore(max_row_bytes=max_row_bytes)
        self.values = ValueRows(max_row_bytes=max_row_bytes)
        self._decoded: OrderedDict[bytes, tuple[StoredEncoding, StoredExecution, Loaded]] = (
            OrderedDict()
        )
        self._decoded_bytes = 0
        self._max_decoded_bytes = decoded_bytes

    def begin(self, key: bytes, table: MutableMapping[bytes, bytes]) -> ExecutionTransaction:
        """Open a transaction on the execution under `key`, loaded from `table` (or none yet).

        Unreadable if its row or a value row it names cannot be read.
        """
        raw = table.get(key)
        if raw is None:
            return ExecutionTransaction(self, key, table, None, None, None)
        cached = self._decoded.get(key)
        if cached is not None and cached[0].data == raw:
            self._decoded.move_to_end(key)
            return ExecutionTransaction(self, key, table, cached[0], cached[1], cached[2])
        try:
            row, encoding = decode_stored_reusable(raw)
            state = filled_in(row.state, table)
        except (CodecError, MissingValueRow) as exc:
            raise Unreadable(f"the stored execution is unreadable: {exc}") from None
        # Filled in only when it names value rows: else the row as read is the execution.
        stored = row if state is row.state else replace(row, state=state)
        loaded = Loaded(state, row.state)
        self._remember(key, encoding, stored, loaded)
        return ExecutionTransaction(self, key, table, encoding, stored, loaded)

    def _remember(
        self, key: bytes, encoding: StoredEncoding, stored: StoredExecution, loaded: Loaded
    ) -> None:
        # The encoding too: the next step copies the bytes of the node runs it keeps.
        self._forget(key)
        self._decoded[key] = (encoding, stored, loaded)
        self._decoded_bytes += _decoded_size(encoding)
        while self._decoded_bytes > self._max_decoded_bytes and self._decoded:
            _, (oldest, _, _) = self._decoded.popitem(last=False)
            self._decoded_bytes -= _decoded_size(oldest)

    def _forget(self, key: bytes) -> None:
        forgotten = self._decoded.pop(key, None)
        if forgotten is not None:
            self._decoded_bytes -= _decoded_size(forgotten[0])


def _decoded_size(encoding: StoredEncoding) -> int:
    return (1 + DECODED_PER_ROW_BYTE) * len(encoding.data)


class ExecutionTransaction:
    """One record's work (or a run of records') on one execution: loaded at `begin`, staged,
    committed once."""

    __slots__ = (
        "_committed",
        "_encoding",
        "_key",
        "_staged",
        "_store",
        "_table",
        "loaded",
        "stored",
    )

    def __init__(
        self,
        store: ExecutionStore,
        key: bytes,
        table: MutableMapping[bytes, bytes],
        encoding: StoredEncoding | None,
        stored: StoredExecution | None,
        loaded: Loaded | None,
    ) -> None:
        self._store = store
        self._key = key
        self._table = table
        self._encoding = encoding
        self.stored = stored
        self.loaded = loaded
        self._staged: _Staged | None = None
        self._committed = False

    @property
    def state(self) -> ExecutionState | None:
        """The execution as loaded, filled in; None if it has no state yet."""
        return self.stored.state if self.stored is not None else None

    @property
    def emitted(self) -> Sequence[OutboxEntry]:
        """The records the staged step emitted (not those sent again)."""
        staged = self._staged
        if staged is None or staged.kept is None:
            return ()
        return staged.sends

    def stage(self, transition: Transition, result: StepResult) -> None:
        """Stage the rows and records of `result`, the step of `transition`.

        Unstorable, with nothing staged, when a row would pass the record limit
        or a record cannot be addressed; staging again replaces what was staged.
        """
        self.stage_steps(((transition, result),))

    def stage_steps(self, steps: Sequence[tuple[Transition, StepResult]]) -> None:
        """Stage steps applied one after the other to the loaded state, as one write: the
        state after the last, the records of each in order, after what is still pending.

        The state row is written once for all of them: a crash leaves all or none, and the
        transitions stay on their topic to be applied again. Unstorable, with nothing staged,
        as `stage`; it names the step it arose in, or the last one for the state's size.
        """
        store = self._store
        chunks = ChunkRows(self._table)
        emitted: list[OutboxEntry] = []
        for transition, result in steps:
            state = result.state
            assert state is not None
            try:
                # Each step's foreach chunks see the rows the steps before it staged.
                outgoing = store.items.apply(result.outgoing, chunks)
                trace = execution_trace(state)
                emitted.extend(
                    outbox_entry(
                        message,
                        store.events_prefix,
                        transition.execution_id,
                        record_traceparent(message, trace, state.nodes),
                    )
                    for message in outgoing
                )
            except ChunkTooLarge as exc:
                raise self._too_large(
                    "a chunk of its foreach results", exc.size, transition
                ) from None
            except CloudEventError as exc:
                error = NodeError("Unsendable", f"{_after(transition)}: {exc}")
                raise Unstorable(error, result_to_blame=False) from None
        transition, result = steps[-1]
        state = result.state
        assert state is not None
        stored = self.stored
        previous = stored.outbox if stored is not None else ()
        outbox = (*store.outbox.acknowledged.pending(previous), *emitted)
        try:
            offloaded = store.values.offload(state, self.loaded, self._table)
        except ValueTooLarge as exc:
            raise self._too_large(exc.what, exc.size, transition) from None
        row = StoredExecution(offloaded.state, outbox)
        encoded = encode_stored_reusing(row, self._encoding)
        if len(encoded.data) > store.max_row_bytes:
            raise self._too_large("the execution's state", len(encoded.data), transition)
        deleted, added = self._timers_changed(state)
        loaded = Loaded(state, offloaded.state)
        before = self.loaded
        # A row form that is the state itself names no value row (the engine never holds one).
        dropped = (
            named_rows(before.row_form) - named_rows(offloaded.state)
            if before is not None and before.row_form is not before.state
            else frozenset()
        )
        self._staged = _Staged(
            chunks.changes,
            deleted,
            added,
            offloaded.rows,
            encoded,
            dropped,
            emitted,
            (row if offloaded.state is state else StoredExecution(state, outbox), loaded),
        )

    def stage_unchanged(self, transition: Transition) -> None:
        """Stage what a transition the engine ignored (already applied) still needs.

        After a crash the state row may be in local RocksDB but not in the
        changelog, and its outputs may never have left: the same rows are
        written again and what is not acknowledged is sent again. A fired timer
        the state no longer holds has its row dropped, or it fires for ever.
        """
        store = self._store
        deleted: tuple[DueTimer, ...] = ()
        if isinstance(transition, TimerFired) and store.timers is not None:
            deleted = (DueTimer(transition.at, transition.execution_id, transition.timer_id),)
        if self.stored is None or self.loaded is None:
            self._staged = replace(_NOTHING, timers_deleted=deleted)
            return
        table = self._table
        # Read now, so that a row gone since the load fails here and not halfway through a commit.
        value_rows = {key: table[key] for key in named_rows(self.loaded.row_form)}
        sends = store.outbox.acknowledged.pending(self.stored.outbox)
        self._staged = _Staged(
            {}, deleted, (), value_rows, self._encoding, frozenset(), sends, None
        )

    async def commit(self, node_types: Mapping[str, str] | None = None) -> None:
        """Write what is staged, in the order the guarantees need, then send its records.

        `node_types` (node id to type) labels node events.
        """
        if self._committed:
            raise RuntimeError("this transaction is committed already")
        staged = self._staged
        if staged is None:
            raise RuntimeError("nothing is staged to commit")
        self._committed = True
        store, table, key = self._store, self._table, self._key
        for row_key, value in staged.chunk_rows.items():
            if value is None:
                table.pop(row_key, None)
            else:
                table[row_key] = value
        timers = store.timers
        if timers is not None:
            for timer in staged.timers_deleted:
                timers.delete(timer)
            for timer, traceparent in staged.timers_set:
                timers.set(timer, traceparent)
        for row_key, value in staged.value_rows.items():  # Faust's tables have no `update`
            table[row_key] = value
        if staged.encoded is not None:
            table[key] = staged.encoded.data
        for row_key in staged.dropped_rows:
            table.pop(row_key, None)
        kept = staged.kept
        if kept is not None:
            if kept[0].state.finished:
                # Nothing but a stray late record reads a finished execution again: keeping
                # it decoded would only hold memory, and push out the ones still running.
                store._forget(key)
            else:
                assert staged.encoded is not None
                store._remember(key, staged.encoded, kept[0], kept[1])
        if staged.sends:
            await store.outbox.send(key, staged.sends, node_types)

    def _timers_changed(
        self, after: ExecutionState
    ) -> tuple[tuple[DueTimer, ...], tuple[tuple[DueTimer, str], ...]]:
        """The rows of the timers table to drop and to add, mirroring the state's timers."""
        if self._store.timers is None:
            return (), ()
        before = self.state
        old = before.timers if before is not None else {}
        new = after.timers
        if old is new or old == new:
            # Most steps: the engine copies the timers, and changes them in a few steps only.
            return (), ()
        execution_id = after.execution_id
        deleted = tuple(
            DueTimer(due, execution_id, timer_id)
            for timer_id, due in old.items()
            if new.get(timer_id) != due
        )
        trace = execution_trace(after)
        added = tuple(
            (DueTimer(due, execution_id, timer_id), timer_traceparent(trace, timer_id))
            for timer_id, due in new.items()
            if old.get(timer_id) != due
        )
        return deleted, added

    def _too_large(self, what: str, size: int, transition: Transition) -> Unstorable:
        message = (
            f"{what} would be {size:,} bytes {_after(transition)}, over the"
            f" {self._store.max_row_bytes:,} a record may hold; keep large data outside the"
            " workflow and pass references"
        )
        return Unstorable(NodeError("StateTooLarge", message), result_to_blame=True)


def _after(transition: Transition) -> str:
    return f"after {type(transition).__name__} {transition.id!r}"
