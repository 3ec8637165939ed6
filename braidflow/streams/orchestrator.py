"""The orchestrator: applies the engine to each transition, in key order, at concurrency 1.

Per record: decode it, load the execution from the table, find its workflow
version, `step`, store the new state with its outbox, send what the step
emitted. A record that cannot be processed goes to the dead-letter topic with
the reason and the partition moves on.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace

from braidflow.config import Settings
from braidflow.engine import (
    ChildFinished,
    ExecutionState,
    ItemsCollected,
    NodeCompleted,
    NodeError,
    NodeFailed,
    StartExecution,
    StepResult,
    TimerFired,
    Transition,
    fail_execution,
    fail_start,
    ids,
    step,
)
from braidflow.engine.state import ExecutionStatus
from braidflow.metrics import DEAD_LETTERS
from braidflow.schemas import (
    CodecError,
    OutboxEntry,
    StoredExecution,
    decode_stored,
    decode_transition,
    encode_stored,
)
from braidflow.schemas.cloudevents import CloudEventError
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.schemas.lifecycle_events import refused_event
from braidflow.streams.catalog import Catalog, Deployment
from braidflow.streams.items import ChunkTooLarge, ItemStore
from braidflow.streams.outbox import Outbox, outbox_entry
from braidflow.streams.publisher import epoch_ms
from braidflow.streams.timers import DueTimer, TimerTable
from braidflow.streams.value_rows import (
    Loaded,
    MissingValueRow,
    ValueRows,
    ValueTooLarge,
    filled_in,
    named_rows,
)
from braidflow.topology.suggestions import did_you_mean

# Decoded executions kept per worker; see `Orchestrator._load`.
DECODED_CACHE_SIZE = 10_000

# A StartExecution may arrive before this worker has read the deployment it
# names (it was deployed through another worker a moment ago).
WORKFLOW_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Record:
    """A record as consumed: where it came from, and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter_of(record: Record, reason: str, at: int) -> DeadLetter:
    """The dead letter of a consumed record that cannot be processed."""
    return DeadLetter(
        record.topic, record.partition, record.offset, record.key, record.value, reason, at
    )


def as_failure(transition: Transition, error: NodeError) -> Transition | None:
    """The failure of the node (or item) whose result `transition` brings, if it brings one."""
    failed_id = ids.too_large_id(transition.id)
    if isinstance(transition, NodeCompleted):
        node_error = replace(error, node_id=transition.node_id)
        return NodeFailed(
            failed_id,
            transition.execution_id,
            transition.at,
            transition.node_id,
            transition.attempt,
            node_error,
            transition.item,
        )
    if isinstance(transition, ItemsCollected):
        node_error = replace(error, node_id=transition.node_id)
        return replace(transition, id=failed_id, results=(), errors=(), error=node_error)
    if isinstance(transition, ChildFinished):
        return replace(
            transition, id=failed_id, status=ExecutionStatus.FAILED, output=None, error=error
        )
    return None


def _after(transition: Transition) -> str:
    return f"after {type(transition).__name__} {transition.id!r}"


@dataclass(frozen=True, slots=True)
class _Row:
    """What a step stores: the execution (both ways), its row's bytes, the value rows to write
    ahead of it, and the records it sends."""

    stored: StoredExecution
    loaded: Loaded
    encoded: bytes
    value_rows: Mapping[bytes, bytes]
    emitted: list[OutboxEntry]


class Unstorable(Exception):
    """A step whose row or records cannot be written; `error` says why.

    `result_to_blame`: what the transition brought made it so, and failing the
    node it reports on is the fitting answer.
    """

    def __init__(self, error: NodeError, *, result_to_blame: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.result_to_blame = result_to_blame


class Poison(Exception):
    """This record cannot be processed; the message is the dead-letter reason.

    `start`: the record is the start of an execution that has no state, refused.
    """

    def __init__(self, reason: str, start: StartExecution | None = None) -> None:
        super().__init__(reason)
        self.start = start


class Orchestrator:
    """Moves records between the transitions topic, the executions table and the engine."""

    def __init__(
        self,
        catalog: Catalog,
        outbox: Outbox,
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        clock: Callable[[], int] = epoch_ms,
        *,
        events_prefix: str = "events.",
        timers: TimerTable | None = None,
        max_state_bytes: int = Settings().max_value_bytes,
    ) -> None:
        self._catalog = catalog
        self._max_state_bytes = max_state_bytes
        self._events_prefix = events_prefix
        self._timers = timers
        self._outbox = outbox
        self._dead_letter = dead_letter
        self._clock = clock
        # Called once per step with the result applied and the engine's time for it.
        self.on_step: Callable[[Transition, StepResult, float], None] | None = None
        self._decoded: OrderedDict[bytes, tuple[bytes, StoredExecution, Loaded]] = OrderedDict()
        self._items = ItemStore(max_row_bytes=max_state_bytes)
        self._values = ValueRows(max_row_bytes=max_state_bytes)
        self._node_types_of: dict[Deployment, Mapping[str, str]] = {}

    def _load(
        self, key: bytes, raw: bytes | None, table: MutableMapping[bytes, bytes]
    ) -> tuple[StoredExecution, Loaded] | None:
        """The stored execution in `raw`, decoded and filled in once; also its row form.

        The table stays the truth: a cached object is used only while the
        table still holds exactly the bytes it was decoded from, so a
        rebalance or a restore can never serve a stale state.
        """
        if raw is None:
            return None
        cached = self._decoded.get(key)
        if cached is not None and cached[0] == raw:
            self._decoded.move_to_end(key)
            return cached[1], cached[2]
        try:
            row = decode_stored(raw)
            state = filled_in(row.state, table)
        except (CodecError, MissingValueRow) as exc:
            raise Poison(f"the stored execution is unreadable: {exc}") from None
        stored = replace(row, state=state)
        loaded = Loaded(state, row.state)
        self._remember(key, raw, stored, loaded)
        return stored, loaded

    def _remember(self, key: bytes, raw: bytes, stored: StoredExecution, loaded: Loaded) -> None:
        self._decoded[key] = (raw, stored, loaded)
        self._decoded.move_to_end(key)
        if len(self._decoded) > DECODED_CACHE_SIZE:
            self._decoded.popitem(last=False)

    async def handle(self, record: Record, table: MutableMapping[bytes, bytes]) -> None:
        """Process one record of the transitions topic."""
        try:
            await self._apply(record, table)
        except Poison as exc:
            await self._dead_letter(dead_letter_of(record, str(exc), self._clock()))
            if exc.start is not None and record.key is not None:
                # Its id was answered when it was accepted: it must read as failed,
                # with the reason, not as accepted for ever.
                refused = refused_event(exc.start, str(exc), self._clock())
                entry = outbox_entry(refused, self._events_prefix, exc.start.execution_id)
                await self._outbox.send(record.key, [entry])

    async def _apply(self, record: Record, table: MutableMapping[bytes, bytes]) -> None:
        transition = self._decode(record)
        key = record.key
        assert key is not None
        raw = table.get(key)
        found = self._load(key, raw, table)
        stored, loaded = found if found is not None else (None, None)
        state = stored.state if stored is not None else None
        refusable = transition if isinstance(transition, StartExecution) and state is None else None
        if isinstance(transition, StartExecution) and transition.workflow_version == 0:
            transition = await self._resolve_child_start(transition, state)
        if isinstance(transition, StartExecution):
            workflow_id, version = transition.workflow_id, transition.workflow_version
        elif state is not None:
            workflow_id, version = state.workflow_id, state.workflow_version
        else:
            raise Poison(f"unknown execution {transition.execution_id!r}")
        deployment = await self._catalog.wait_for(workflow_id, version, WORKFLOW_WAIT_S)
        if deployment is None:
            raise Poison(f"unknown workflow {workflow_id!r} version {version}", refusable)
        began = time.perf_counter()
        try:
            result = step(deployment.workflow, state, transition)
        except Exception as exc:
            raise Poison(f"engine error: {type(exc).__name__}: {exc}", refusable) from None
        seconds = time.perf_counter() - began
        if result.ignored is not None or result.state is None:
            if self.on_step is not None:
                self.on_step(transition, result, seconds)
            if isinstance(transition, TimerFired) and self._timers is not None:
                # A timer the state no longer holds: drop its row, or it fires forever.
                self._timers.delete(
                    DueTimer(transition.at, transition.execution_id, transition.timer_id)
                )
            if stored is not None and raw is not None and loaded is not None:
                # Already applied: after a crash the row may be in local RocksDB but
                # not in the changelog, and its outputs may never have left. Write
                # the same rows again and resend what is not acknowledged.
                for value_key in named_rows(loaded.row_form):
                    table[value_key] = table[value_key]
                table[key] = raw
                pending = self._outbox.acknowledged.pending(stored.outbox)
                await self._outbox.send(key, pending, self._node_types(deployment))
            return
        try:
            row = self._stored(transition, stored, loaded, result, table)
        except Unstorable as exc:
            # Written anyway, the step would fail in the producer and stop the partition.
            result = await self._instead(record, deployment, state, transition, exc)
            try:
                row = self._stored(transition, stored, loaded, result, table)
            except Unstorable as again:
                raise Poison(
                    f"{exc.error.message}; failing instead: {again.error.message}", refusable
                ) from None
        assert result.state is not None
        if self.on_step is not None:
            # The result applied: what failed the step instead when its own could not be stored.
            self.on_step(transition, result, seconds)
        if self._timers is not None:
            self._keep_timers(result.state.execution_id, state, result.state)
        # Value rows ahead of the state row that names them; those it no longer names after.
        for value_key, value in row.value_rows.items():  # Faust's tables have no `update`
            table[value_key] = value
        table[key] = row.encoded
        if loaded is not None:
            for dropped in named_rows(loaded.row_form) - named_rows(row.loaded.row_form):
                table.pop(dropped, None)
        if result.state.finished:
            # Nothing but a stray late record reads a finished execution again: keeping it
            # decoded would only hold memory, and push out the ones still running.
            self._decoded.pop(key, None)
        else:
            self._remember(key, row.encoded, row.stored, row.loaded)
        await self._outbox.send(key, row.emitted, self._node_types(deployment))
        # Counted once, when the step that wrote them is stored; an outbox resend is not counted.
        letters = sum(1 for entry in row.emitted if entry.kind == "dead_letter")
        if letters:
            DEAD_LETTERS.labels("node", record.topic).inc(letters)

    def _stored(
        self,
        transition: Transition,
        stored: StoredExecution | None,
        loaded: Loaded | None,
        result: StepResult,
        table: MutableMapping[bytes, bytes],
    ) -> _Row:
        """The rows to store after a step, and what the step sends.

        Unstorable when a row would pass the record limit or a record cannot be addressed.
        """
        assert result.state is not None
        try:
            # Chunk rows go into the table ahead of the state row that counts them.
            outgoing = self._items.apply(result.outgoing, table)
            emitted = [
                outbox_entry(message, self._events_prefix, transition.execution_id)
                for message in outgoing
            ]
        except ChunkTooLarge as exc:
            raise self._too_large("a chunk of its foreach results", exc.size, transition) from None
        except CloudEventError as exc:
            error = NodeError("Unsendable", f"{_after(transition)}: {exc}")
            raise Unstorable(error, result_to_blame=False) from None
        previous = stored.outbox if stored is not None else ()
        outbox = (*self._outbox.acknowledged.pending(previous), *emitted)
        try:
            offloaded = self._values.offload(result.state, loaded, table)
        except ValueTooLarge as exc:
            raise self._too_large(exc.what, exc.size, transition) from None
        encoded = encode_stored(StoredExecution(offloaded.state, outbox))
        if len(encoded) > self._max_state_bytes:
            raise self._too_large("the execution's state", len(encoded), transition)
        return _Row(
            StoredExecution(result.state, outbox),
            Loaded(result.state, offloaded.state),
            encoded,
            offloaded.rows,
            emitted,
        )

    def first_step_problem(self, deployment: Deployment, start: StartExecution) -> str | None:
        """Why the first step of `start` could not be stored, or None if it could.

        Pure: the step runs against an empty table and nothing is written, so the
        API can refuse a start that would only fail with StateTooLarge.
        """
        result = step(deployment.workflow, None, start)
        if result.ignored is not None or result.state is None:
            return None
        try:
            self._stored(start, None, None, result, {})
        except Unstorable as exc:
            return exc.error.message
        return None

    def _too_large(self, what: str, size: int, transition: Transition) -> Unstorable:
        message = (
            f"{what} would be {size:,} bytes {_after(transition)}, over the"
            f" {self._max_state_bytes:,} a record may hold; keep large data outside the"
            " workflow and pass references"
        )
        return Unstorable(NodeError("StateTooLarge", message), result_to_blame=True)

    async def _instead(
        self,
        record: Record,
        deployment: Deployment,
        state: ExecutionState | None,
        transition: Transition,
        problem: Unstorable,
    ) -> StepResult:
        """What to apply in place of a step that cannot be stored.

        A result too large for the state (a task's output, a foreach's results, a
        child's output) fails its node or item: retries, error edges and parking
        apply as to any failure. Anything else fails the execution, and the record
        goes to the dead-letter topic with the reason.
        """
        workflow = deployment.workflow
        error = problem.error
        if state is None:
            if not isinstance(transition, StartExecution):
                raise Poison(error.message)
            await self._dead_letter(dead_letter_of(record, error.message, self._clock()))
            return fail_start(workflow, transition, error)
        failed = as_failure(transition, error) if problem.result_to_blame else None
        if failed is not None:
            result = step(workflow, state, failed)
            if result.ignored is None and result.state is not None:
                return result
        await self._dead_letter(dead_letter_of(record, error.message, self._clock()))
        return fail_execution(workflow, state, error, transition.at)

    def _node_types(self, deployment: Deployment) -> Mapping[str, str]:
        """Node id to type of a deployed workflow, built once per deployment."""
        types = self._node_types_of.get(deployment)
        if types is None:
            types = {node_id: node.type for node_id, node in deployment.workflow.nodes.items()}
            self._node_types_of[deployment] = types
        return types

    async def _resolve_child_start(
        self, start: StartExecution, state: ExecutionState | None
    ) -> StartExecution:
        """A child's start names no version ("the latest"): pin the one deployed now.

        An unknown workflow fails the parent's node through a `ChildFinished`,
        since no child will ever run to tell it.
        """
        latest = self._catalog.latest(start.workflow_id)
        if latest is not None or state is not None:
            version = latest.version if latest is not None else state.workflow_version  # type: ignore[union-attr]
            return replace(start, workflow_version=version)
        deployed = (d.workflow_id for d in self._catalog.all_latest())
        reason = (
            f"unknown workflow {start.workflow_id!r}{did_you_mean(start.workflow_id, deployed)}"
        )
        if start.parent is not None:
            notice = ChildFinished(
                ids.finished_id(start.execution_id),
                start.parent.execution_id,
                self._clock(),
                start.parent.node_id,
                start.execution_id,
                ExecutionStatus.FAILED,
                error=NodeError("UnknownWorkflow", f"the subworkflow cannot start: {reason}"),
                item=start.parent.item,
            )
            await self._outbox.send(
                start.parent.execution_id.encode(),
                [outbox_entry(notice, self._events_prefix, start.parent.execution_id)],
            )
        raise Poison(reason, start)

    def _keep_timers(
        self, execution_id: str, before: ExecutionState | None, after: ExecutionState
    ) -> None:
        """Mirror the state's pending timers in the timers table, row for row."""
        assert self._timers is not None
        old = before.timers if before is not None else {}
        new = after.timers
        if old is new:
            return
        for timer_id, due in old.items():
            if new.get(timer_id) != due:
                self._timers.delete(DueTimer(due, execution_id, timer_id))
        for timer_id, due in new.items():
            if old.get(timer_id) != due:
                self._timers.set(DueTimer(due, execution_id, timer_id))

    @staticmethod
    def _decode(record: Record) -> Transition:
        if record.value is None:
            raise Poison("empty value (tombstone) on the transitions topic")
        try:
            transition = decode_transition(record.value)
        except CodecError as exc:
            raise Poison(f"undecodable transition: {exc}") from None
        if record.key is None or record.key != transition.execution_id.encode():
            raise Poison(f"key {record.key!r} is not the execution id {transition.execution_id!r}")
        return transition
