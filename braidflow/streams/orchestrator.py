"""The orchestrator: applies the engine to each transition, in key order, at concurrency 1.

Per record: decode it, open a transaction of the execution store (which loads
the execution), find its workflow version, `step`, stage the result, commit
(the store writes the rows and sends what the step emitted; see
`execution_store`). A record that cannot be processed goes to the dead-letter
topic with the reason and the partition moves on.

Several records of one execution fetched together (a fan-out's results, under load) are
applied one after the other to the state in memory and committed as one transaction: one
state encoded and written, their records sent in order (`handle_together`). Staging and the
commit cost several times the engine's step; the transitions topic still holds each record.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace

from braidflow.access import DEFAULT_TENANT
from braidflow.config import Settings
from braidflow.engine import (
    ChildFinished,
    ExecutionState,
    ItemsCollected,
    NodeCompleted,
    NodeError,
    NodeFailed,
    RunNode,
    StartExecution,
    StepResult,
    Transition,
    fail_execution,
    fail_start,
    ids,
    step,
)
from braidflow.engine.admission import admission_key
from braidflow.engine.frozen import quick_init
from braidflow.engine.state import ExecutionStatus
from braidflow.engine.trace_context import ExecutionTrace
from braidflow.metrics import DEAD_LETTERS
from braidflow.schemas import CodecError, decode_transition
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.schemas.lifecycle_events import refused_event
from braidflow.streams.catalog import Catalog, Deployment
from braidflow.streams.execution_store import (
    ExecutionStore,
    ExecutionTransaction,
    Unreadable,
    Unstorable,
)
from braidflow.streams.outbox import Outbox, outbox_entry
from braidflow.streams.publisher import epoch_ms
from braidflow.streams.timers import TimerTable
from braidflow.tenants import catalog_key
from braidflow.topology.departments import call_refusal
from braidflow.topology.suggestions import did_you_mean
from braidflow.topology.workflow import Workflow

# A StartExecution may arrive before this worker has read the deployment it
# names (it was deployed through another worker a moment ago).
WORKFLOW_WAIT_S = 5.0


StepObserver = Callable[[ExecutionState | None, StepResult, Mapping[str, str]], None]
"""Sees each applied step: the state before it, its result, the workflow's node types."""


@quick_init
@dataclass(frozen=True, slots=True)
class Record:
    """A record as consumed: where it came from, and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter_of(
    record: Record, reason: str, at: int, tenant: str = DEFAULT_TENANT
) -> DeadLetter:
    """The dead letter of a consumed record of `tenant` that cannot be processed."""
    return DeadLetter(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        reason,
        at,
        tenant=tenant,
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


@quick_init
@dataclass(frozen=True, slots=True)
class _Applied:
    """A step applied in memory, not stored yet: what the hooks are told once it is."""

    before: ExecutionState
    transition: Transition
    result: StepResult
    seconds: float


def steps_apart(
    workflow: Workflow, state: ExecutionState | None, transition: Transition
) -> StepResult | None:
    """The step again with the nodes it readied to run last sent apart (`step`'s `apart`),
    or None when that sets nothing apart."""
    result = step(workflow, state, transition, apart=True)
    if result.ignored is not None or result.state is None:
        return None
    if not any(isinstance(out, RunNode) for out in result.outgoing):
        return None
    return result


class Poison(Exception):
    """This record cannot be processed; the message is the dead-letter reason.

    `start`: the record is the start of an execution that has no state, refused.
    `tenant`: whose record it is, when known (its dead letter is that tenant's).
    """

    def __init__(
        self, reason: str, start: StartExecution | None = None, tenant: str | None = None
    ) -> None:
        super().__init__(reason)
        self.start = start
        self.tenant = tenant if tenant is not None or start is None else start.tenant


class Orchestrator:
    """Moves records between the transitions topic, the execution store and the engine."""

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
        self._events_prefix = events_prefix
        self._outbox = outbox
        self._dead_letter = dead_letter
        self._clock = clock
        self._store = ExecutionStore(
            outbox, timers, events_prefix=events_prefix, max_row_bytes=max_state_bytes
        )
        # Called once per step with the result applied and the engine's time for it.
        self.on_step: Callable[[Transition, StepResult, float], None] | None = None
        # Called once per step applied, with the state before it and the workflow's node
        # types (node id to type): what ended in the step can be told (its spans, say).
        self.on_applied: StepObserver | None = None
        self._node_types_of: dict[Deployment, Mapping[str, str]] = {}

    async def handle(self, record: Record, table: MutableMapping[bytes, bytes]) -> None:
        """Process one record of the transitions topic."""
        try:
            await self._apply(record, table)
        except Poison as exc:
            tenant = exc.tenant or DEFAULT_TENANT
            await self._dead_letter(dead_letter_of(record, str(exc), self._clock(), tenant))
            if exc.start is not None and record.key is not None:
                # Its id was answered when it was accepted: it must read as failed,
                # with the reason, not as accepted for ever.
                refused = refused_event(exc.start, str(exc), self._clock())
                header = ExecutionTrace.of(exc.start.execution_id, exc.start.traceparent).header
                entry = outbox_entry(refused, self._events_prefix, exc.start.execution_id, header)
                await self._outbox.send(record.key, [entry])

    async def handle_together(
        self, records: Sequence[Record], table: MutableMapping[bytes, bytes]
    ) -> None:
        """Process records of one execution (one key), in their order, applying each run of
        them that needs nothing but the engine as one transaction (`_apply_run`); any other
        record (a start, an ignored or failing step, poison) goes through `handle` alone."""
        rest = records
        while rest:
            applied = await self._apply_run(rest, table) if len(rest) > 1 else 0
            if applied == 0:
                await self.handle(rest[0], table)
                applied = 1
            rest = rest[applied:]

    async def _apply_run(
        self, records: Sequence[Record], table: MutableMapping[bytes, bytes]
    ) -> int:
        """Apply the longest run of `records`, from the first, whose steps change a running
        execution and can be stored, and commit them at once; how many (0: none could).

        Nothing is written or sent before the commit, so a run that cannot be stored as a
        whole is left to `handle`, record by record, which finds the step to blame.
        """
        key = records[0].key
        if key is None:
            return 0
        try:
            execution = self._store.begin(key, table)
        except Unreadable:
            return 0
        state = execution.state
        if state is None:
            return 0
        deployment = self._catalog.get(
            catalog_key(state.tenant, state.workflow_id), state.workflow_version
        )
        if deployment is None:
            return 0
        workflow = self._catalog.runnable(deployment)
        applied: list[_Applied] = []
        for record in records:
            try:
                transition = self._decode(record)
            except Poison:
                break
            if isinstance(transition, StartExecution):
                break
            began = time.perf_counter()
            try:
                result = step(workflow, state, transition)
            except Exception:
                break
            seconds = time.perf_counter() - began
            if result.ignored is not None or result.state is None:
                break
            applied.append(_Applied(state, transition, result, seconds))
            state = result.state
        if not applied:
            return 0
        try:
            execution.stage_steps([(one.transition, one.result) for one in applied])
        except Unstorable:
            return 0
        node_types = self._node_types(deployment)
        if self.on_step is not None:
            for one in applied:
                self.on_step(one.transition, one.result, one.seconds)
        await execution.commit(node_types)
        if self.on_applied is not None:
            for one in applied:
                self.on_applied(one.before, one.result, node_types)
        letters = sum(1 for entry in execution.emitted if entry.kind == "dead_letter")
        if letters:
            DEAD_LETTERS.labels("node", records[0].topic).inc(letters)
        return len(applied)

    async def _apply(self, record: Record, table: MutableMapping[bytes, bytes]) -> None:
        """Decode the record, load its execution, step, stage the result, commit."""
        transition = self._decode(record)
        key = record.key
        assert key is not None
        try:
            execution = self._store.begin(key, table)
        except Unreadable as exc:
            raise Poison(str(exc)) from None
        state = execution.state
        refusable = transition if isinstance(transition, StartExecution) and state is None else None
        if isinstance(transition, StartExecution) and transition.workflow_version == 0:
            transition = await self._resolve_child_start(transition, state)
        if isinstance(transition, StartExecution):
            workflow_id, version = transition.workflow_id, transition.workflow_version
            tenant = transition.tenant
        elif state is not None:
            workflow_id, version, tenant = state.workflow_id, state.workflow_version, state.tenant
        else:
            raise Poison(f"unknown execution {transition.execution_id!r}")
        key = catalog_key(tenant, workflow_id)
        # Read at once nearly always: waiting (a coroutine each record) only when it is not.
        deployment = self._catalog.get(key, version)
        if deployment is None:
            deployment = await self._catalog.wait_for(key, version, WORKFLOW_WAIT_S)
        if deployment is None:
            raise Poison(f"unknown workflow {workflow_id!r} version {version}", refusable, tenant)
        if isinstance(transition, StartExecution) and state is None and transition.dept is None:
            transition = self._with_department_context(transition, deployment)
        if isinstance(transition, StartExecution) and state is None:
            transition = self._with_admission(transition, deployment)
        began = time.perf_counter()
        try:
            result = step(self._catalog.runnable(deployment), state, transition)
        except Exception as exc:
            raise Poison(f"engine error: {type(exc).__name__}: {exc}", refusable, tenant) from None
        seconds = time.perf_counter() - began
        if result.ignored is not None or result.state is None:
            execution.stage_unchanged(transition)
        else:
            result = await self._stage(record, deployment, execution, transition, result, refusable)
        if self.on_step is not None:
            # The result applied: what failed the step instead when its own could not be stored.
            self.on_step(transition, result, seconds)
        node_types = self._node_types(deployment)
        await execution.commit(node_types)
        if self.on_applied is not None and result.ignored is None and result.state is not None:
            self.on_applied(state, result, node_types)
        # Counted once, when the step that wrote them is stored; an outbox resend is not counted.
        letters = sum(1 for entry in execution.emitted if entry.kind == "dead_letter")
        if letters:
            DEAD_LETTERS.labels("node", record.topic).inc(letters)

    async def _stage(
        self,
        record: Record,
        deployment: Deployment,
        execution: ExecutionTransaction,
        transition: Transition,
        result: StepResult,
        refusable: StartExecution | None,
    ) -> StepResult:
        """Stage `result`, or what fails in its place when it cannot be stored; the one staged.

        A step that ran a join or an end it readied holds their outputs too, in what it
        sends: it is tried again with them apart (their own RunNode) before anything fails.
        """
        try:
            execution.stage(transition, result)
            return result
        except Unstorable as exc:
            # Written anyway, the step would fail in the producer and stop the partition.
            problem = exc
        apart = steps_apart(self._catalog.runnable(deployment), execution.state, transition)
        if apart is not None:
            try:
                execution.stage(transition, apart)
                return apart
            except Unstorable:
                pass
        instead = await self._instead(record, deployment, execution.state, transition, problem)
        try:
            execution.stage(transition, instead)
        except Unstorable as again:
            raise Poison(
                f"{problem.error.message}; failing instead: {again.error.message}",
                refusable,
                deployment.tenant,
            ) from None
        return instead

    def first_step_problem(self, deployment: Deployment, start: StartExecution) -> str | None:
        """Why the first step of `start` could not be stored, or None if it could.

        Pure: the step runs against an empty table and nothing is written, so the
        API can refuse a start that would only fail with StateTooLarge.
        """
        result = step(deployment.workflow, None, start)
        if result.ignored is not None or result.state is None:
            return None
        # An empty table: nothing is loaded, and nothing of the decoded cache is touched.
        try:
            self._store.begin(start.execution_id.encode(), {}).stage(start, result)
            return None
        except Unstorable as exc:
            problem = exc.error.message
        apart = steps_apart(deployment.workflow, None, start)
        if apart is not None:
            try:
                self._store.begin(start.execution_id.encode(), {}).stage(start, apart)
                return None
            except Unstorable:
                pass
        return problem

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
                raise Poison(error.message, tenant=deployment.tenant)
            letter = dead_letter_of(record, error.message, self._clock(), deployment.tenant)
            await self._dead_letter(letter)
            return fail_start(workflow, transition, error)
        failed = as_failure(transition, error) if problem.result_to_blame else None
        if failed is not None:
            result = step(workflow, state, failed)
            if result.ignored is None and result.state is not None:
                return result
        letter = dead_letter_of(record, error.message, self._clock(), deployment.tenant)
        await self._dead_letter(letter)
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
        latest = self._catalog.latest(catalog_key(start.tenant, start.workflow_id))
        refusal = self._call_refusal(start) if state is None else None
        if refusal is not None:
            await self._fail_parent(start, NodeError("DepartmentRefused", refusal))
            raise Poison(refusal, start)
        if latest is not None or state is not None:
            version = latest.version if latest is not None else state.workflow_version  # type: ignore[union-attr]
            return replace(start, workflow_version=version)
        deployed = (d.workflow_id for d in self._catalog.all_latest(start.tenant))
        reason = (
            f"unknown workflow {start.workflow_id!r}{did_you_mean(start.workflow_id, deployed)}"
        )
        await self._fail_parent(
            start, NodeError("UnknownWorkflow", f"the subworkflow cannot start: {reason}")
        )
        raise Poison(reason, start)

    def _call_refusal(self, start: StartExecution) -> str | None:
        """Why the department of the called workflow refuses the caller's department."""
        called = self._catalog.department_of(catalog_key(start.tenant, start.workflow_id))
        if start.parent is None or called is None:
            return None
        caller = self._catalog.latest(catalog_key(start.tenant, start.parent.workflow_id))
        department = None if caller is None else caller.workflow.definition.department
        return call_refusal(start.parent.workflow_id, department, start.workflow_id, called)

    async def _fail_parent(self, start: StartExecution, error: NodeError) -> None:
        """Fail the parent's node of a child that will never run to tell it."""
        if start.parent is None:
            return
        notice = ChildFinished(
            ids.finished_id(start.execution_id),
            start.parent.execution_id,
            self._clock(),
            start.parent.node_id,
            start.execution_id,
            ExecutionStatus.FAILED,
            error=error,
            item=start.parent.item,
        )
        header = ExecutionTrace.of(start.execution_id, start.traceparent).header
        await self._outbox.send(
            start.parent.execution_id.encode(),
            [outbox_entry(notice, self._events_prefix, start.parent.execution_id, header)],
        )

    def _with_department_context(
        self, start: StartExecution, deployment: Deployment
    ) -> StartExecution:
        """The start with its department's shared context as it is now: the execution
        keeps these values whatever the department changes to later."""
        departments = self._catalog.departments_of(deployment.tenant)
        department = departments.definition(deployment.workflow.definition.department)
        if department is None:
            return start
        return replace(start, dept=department.context)

    def _with_admission(self, start: StartExecution, deployment: Deployment) -> StartExecution:
        """The start marked to wait for a slot when its department caps its executions or
        has a budget per day (as they are now); a child of a workflow of the same department runs in its parent's
        slot, so parents waiting for their children never hold every slot."""
        name = deployment.workflow.definition.department
        department = self._catalog.departments_of(start.tenant).definition(name)
        if department is None or (
            department.max_concurrent_executions is None and department.budget_per_day is None
        ):
            return start
        if start.parent is not None:
            caller = self._catalog.latest(catalog_key(start.tenant, start.parent.workflow_id))
            if caller is not None and caller.workflow.definition.department == name:
                return start
        return replace(start, admission=admission_key(start.tenant, department.name))

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
