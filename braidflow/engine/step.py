"""The engine: `step(workflow, state, transition) -> StepResult(state, outgoing)`.

Pure and deterministic. Redelivery is harmless by construction: every
transition first checks that the state is the one it expects (a node not yet
run, a run still waiting for that attempt, an execution not yet finished) and
otherwise changes nothing and emits nothing.

Failure: a work node's failed attempt is retried after its backoff while its
`retry` allows (a `<node>/<attempt>/retry` timer). A node that fails for good
takes its on_error edge if it has one, and the execution goes on; otherwise
it is dead-lettered and the execution fails (or, with `on_failure: park`,
parks) once the work in flight has drained. A redrive gives the failed node a new attempt and takes a
failed or parked execution up again: nodes the stop cancelled run again and
nodes that finished while it drained pass their results on. While paused,
transitions are held (not applied) and the resume applies them in order.

What each kind of node does (how it starts, what its timeout does, which
transitions it owns, whether a redrive may patch its input) is its module's, in
`engine/nodes/<kind>.py`; this module holds no per-kind branching. It keeps
dispatch, propagation along edges, joins, retries, failure and finishing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from braidflow.engine import ids, sla
from braidflow.engine.cost import model_calls, spent
from braidflow.engine.frozen import quick_init
from braidflow.engine.ids import (
    BUDGET_DAY_TIMER,
    EXECUTION_TIMER,
    SLA_TIMER,
    child_execution_id,
)
from braidflow.engine.messages import (
    AdmissionReleased,
    AdmissionRequested,
    AdmitExecution,
    ApprovalDecided,
    CancelExecution,
    ChildFinished,
    DeadLetterNode,
    EventArrived,
    ItemsCollected,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    ParentLink,
    PauseExecution,
    RedriveNode,
    ResumeExecution,
    RunNode,
    StartExecution,
    TimerFired,
    Transition,
)
from braidflow.engine.nodes import FINISHING, NODE_KINDS, NodeKind
from braidflow.engine.nodes.base import (
    normal_edges,
    not_owned,
    timeout_timer,
)
from braidflow.engine.state import (
    IN_FLIGHT,
    TERMINAL,
    ControlAction,
    ExecutionState,
    ExecutionStatus,
    ForeachProgress,
    JoinState,
    LoopProgress,
    NodeRun,
    NodeStatus,
    iso_time,
)
from braidflow.engine.trace_context import execution_trace, valid_traceparent
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.model import Retry
from braidflow.topology.workflow import CompiledEdge, CompiledNode, Workflow

__all__ = [
    "EXECUTION_TIMER",
    "MAX_SUBWORKFLOW_DEPTH",
    "Draft",
    "StepResult",
    "child_execution_id",
    "fail_execution",
    "fail_start",
    "input_problems",
    "retry_delay_ms",
    "scope_of",
    "step",
]

MAX_SUBWORKFLOW_DEPTH = 16
"""How deep workflow calls may nest; a deeper start fails (a workflow calling itself ends here)."""

# Statuses bound once: on Python 3.11 a lookup on an Enum class goes through
# EnumType.__getattr__, about 3x a global's cost, and these are read on every step.
_EXECUTION_CANCELLED = ExecutionStatus.CANCELLED
_EXECUTION_COMPLETED = ExecutionStatus.COMPLETED
_EXECUTION_FAILED = ExecutionStatus.FAILED
_EXECUTION_PARKED = ExecutionStatus.PARKED
_EXECUTION_QUEUED = ExecutionStatus.QUEUED
_EXECUTION_RUNNING = ExecutionStatus.RUNNING
_NODE_CANCELLED = NodeStatus.CANCELLED
_NODE_COMPLETED = NodeStatus.COMPLETED
_NODE_FAILED = NodeStatus.FAILED
_NODE_RUNNING = NodeStatus.RUNNING
_NODE_SKIPPED = NodeStatus.SKIPPED
_NODE_WAITING = NodeStatus.WAITING


@quick_init
@dataclass(frozen=True, slots=True)
class StepResult:
    """The state after a transition, what to send, and why nothing happened (if so)."""

    state: ExecutionState | None
    outgoing: tuple[Outgoing, ...] = ()
    ignored: str | None = None


def input_problems(workflow: Workflow, value: Any) -> list[str]:
    """Each way `value` breaks the workflow's input schema, naming the field."""
    if workflow.input_validator is None:
        return []
    problems = []
    for error in sorted(workflow.input_validator.iter_errors(value), key=lambda e: list(e.path)):
        field = ".".join(["input", *(str(p) for p in error.path)])
        problems.append(f"{field}: {error.message}")
    return problems


def retry_delay_ms(retry: Retry, execution_id: str, node_id: str, attempt: int) -> int:
    """The backoff after failed attempt `attempt`.

    Jitter scales it by a factor in [0.5, 1) drawn from a hash of the execution,
    node and attempt: spread out like random jitter, yet the same on every replay.
    """
    if retry.backoff == "exponential":
        delay = retry.initial_ms * 2 ** (attempt - 1)
    else:
        delay = retry.initial_ms
    if retry.max_ms is not None:
        delay = min(delay, retry.max_ms)
    if retry.jitter:
        seed = ids.node_attempt(execution_id, node_id, attempt).encode()
        share = int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "big") / 2**64
        delay = int(delay * (0.5 + share / 2))
    return delay


def step(
    workflow: Workflow,
    state: ExecutionState | None,
    transition: Transition,
    *,
    apart: bool = False,
) -> StepResult:
    """Apply one transition to one execution.

    `apart`: the nodes the step readies to run last (a join, the end) get a RunNode of their
    own instead of running in it, as any control node: the runtime's way out for a step that
    is too large to store with them (their outputs would wait in the row beside the step's).
    """
    if isinstance(transition, StartExecution):
        if state is not None:
            return StepResult(state, ignored="execution already started")
        if transition.workflow_version == 0:
            # "The latest version": which one that is depends on the catalog, not the engine.
            return StepResult(None, ignored="workflow version 0 must be resolved before the start")
        return _start(workflow, transition, apart)
    if state is None:
        return StepResult(None, ignored="unknown execution")
    return _apply(workflow, state, transition, transition.at, apart)


def fail_execution(
    workflow: Workflow, state: ExecutionState, error: NodeError, at: int
) -> StepResult:
    """End an unfinished execution as failed, for a reason found outside the engine.

    The runtime applies it in place of a step it cannot store (a state larger than
    a record may be): work in flight, timers and children are cancelled, as on
    the execution's timeout.
    """
    if state.finished:
        return StepResult(state, ignored=f"execution already {state.status}")
    draft = Draft(workflow, state, at)
    draft.finish(_EXECUTION_FAILED, error=error)
    return StepResult(draft.build(), tuple(draft.outgoing))


def fail_start(workflow: Workflow, t: StartExecution, error: NodeError) -> StepResult:
    """A new execution that fails at once, keeping neither the start's input nor its event:
    they are what the runtime could not store."""
    return fail_execution(workflow, _initial_state(t, None, None), error, t.at)


def _apply(
    workflow: Workflow, state: ExecutionState, t: Transition, at: int, apart: bool = False
) -> StepResult:
    """Apply `t` to an existing execution, as of `at`."""
    apply = _APPLY.get(type(t))
    if apply is None:
        return StepResult(state, ignored=f"unsupported transition {type(t).__name__}")
    if state.finished and not (state.status == _EXECUTION_FAILED and isinstance(t, RedriveNode)):
        if isinstance(t, AdmitExecution) and state.admission is not None:
            return _admitted_after_the_end(state, t)
        return StepResult(state, ignored=f"execution already {state.status}")
    if state.status == _EXECUTION_PARKED and not isinstance(t, RedriveNode | CancelExecution):
        return StepResult(state, ignored="execution is parked: only a redrive or a cancel applies")
    if state.paused and not isinstance(t, ResumeExecution | CancelExecution):
        return _hold(workflow, state, t)
    draft = Draft(workflow, state, at)
    reason = apply(draft, t)
    if reason is not None:
        return StepResult(state, ignored=reason)
    draft.run_readied(apart)
    result = StepResult(draft.build(), tuple(draft.outgoing))
    if isinstance(t, ResumeExecution):
        return _release(workflow, result, state.held, at, apart)
    return result


def _hold(workflow: Workflow, state: ExecutionState, t: Transition) -> StepResult:
    """Keep `t` for the resume, unless it would be ignored then anyway."""
    if isinstance(t, PauseExecution):
        return StepResult(state, ignored="execution already paused")
    if any(held.id == t.id for held in state.held):
        return StepResult(state, ignored=f"transition {t.id!r} is already held")
    # A transition applied before the pause and delivered again must change
    # nothing: try it after those already held, as the resume will.
    probe = replace(state, paused=False, held=())
    for held in state.held:
        probe = _apply(workflow, probe, held, t.at).state or probe
    verdict = _apply(workflow, probe, t, t.at)
    if verdict.ignored is not None:
        return StepResult(state, ignored=verdict.ignored)
    return StepResult(replace(state, held=(*state.held, t), updated_at=t.at))


def _release(
    workflow: Workflow, resumed: StepResult, held: tuple[Transition, ...], at: int, apart: bool
) -> StepResult:
    """After a resume: apply the held transitions in arrival order, as of the resume."""
    state, outgoing = resumed.state, list(resumed.outgoing)
    assert state is not None
    for t in held:
        result = _apply(workflow, state, t, at, apart)
        if result.ignored is None and result.state is not None:
            state = result.state
            outgoing.extend(result.outgoing)
    return StepResult(state, tuple(outgoing))


def _admitted_after_the_end(state: ExecutionState, t: AdmitExecution) -> StepResult:
    """A slot given to an execution that has ended (a late or repeated request for it reached
    the queue after its release): give it back, or the department would lose it for good."""
    released = AdmissionReleased(
        ids.admission_released_id(state.execution_id, "/late"),
        state.execution_id,
        t.at,
        state.admission or "",
    )
    return StepResult(state, (released,))


def _initial_state(
    t: StartExecution, input_: Any, event: Mapping[str, Any] | None
) -> ExecutionState:
    return ExecutionState(
        execution_id=t.execution_id,
        workflow_id=t.workflow_id,
        workflow_version=t.workflow_version,
        status=_EXECUTION_RUNNING,
        started_at=t.at,
        updated_at=t.at,
        input=input_,
        event=event,
        parent=t.parent,
        dept=t.dept,
        tenant=t.tenant,
        traceparent=valid_traceparent(t.traceparent),
    )


def _start(workflow: Workflow, t: StartExecution, apart: bool) -> StepResult:
    state = _initial_state(t, t.input, t.event)
    draft = Draft(workflow, state, t.at)
    problems = input_problems(workflow, t.input)
    if t.parent is not None and t.parent.depth > MAX_SUBWORKFLOW_DEPTH:
        message = (
            f"workflow calls nest deeper than {MAX_SUBWORKFLOW_DEPTH}"
            f" ({t.parent.workflow_id} -> {t.workflow_id}, execution {t.execution_id})"
        )
        draft.refused = True
        draft.finish(_EXECUTION_FAILED, error=NodeError("SubworkflowDepth", message))
    elif problems:
        draft.refused = True
        draft.finish(_EXECUTION_FAILED, error=NodeError("InputInvalid", "; ".join(problems)))
    elif t.admission is not None:
        # Its department caps how many run at once: it waits for its turn, and its time
        # limit counts from then.
        queued = replace(state, status=_EXECUTION_QUEUED, admission=t.admission)
        draft = Draft(workflow, queued, t.at)
        draft.emit_event("workflow.queued", data={"admission": t.admission})
        draft.ask_admission(ids.admission_requested_id(t.execution_id))
    else:
        draft.begin()
        draft.run_readied(apart)
    return StepResult(draft.build(), tuple(draft.outgoing))


def _trigger(event: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What `workflow.started` says of the event that started the execution."""
    if event is None:
        return None
    return {k: event.get(k) for k in ("id", "type", "source", "subject")}


def _join_timer(node_id: str) -> str:
    return ids.join_timer(node_id)


def _on_error_edge(node: CompiledNode) -> CompiledEdge | None:
    return next((e for e in node.outgoing if e.on_error), None)


_SCOPE_NAMES = ("input", "vars", "nodes", "event", "execution", "parent", "dept")


class _Scope(Mapping[str, Any]):
    """The names expressions read, each built only when an expression reads it.

    `bound` adds names of a node kind's own: a foreach's `item` and `index` for what
    it renders per item, a loop's `last` and `index` per pass.
    """

    def __init__(
        self,
        workflow: Workflow,
        state: ExecutionState,
        runs: Mapping[str, NodeRun],
        bound: Mapping[str, Any] | None = None,
    ):
        self._workflow = workflow
        self._state = state
        self._runs = runs
        self._bound = bound
        self._names = _SCOPE_NAMES if bound is None else (*_SCOPE_NAMES, *bound)

    def __getitem__(self, key: str) -> Any:
        s = self._state
        if key == "input":
            return s.input
        if key == "vars":
            return self._workflow.definition.variables
        if key == "nodes":
            return _NodesView(self._runs)
        if key == "event":
            return s.event
        if key == "execution":
            return {
                "id": s.execution_id,
                "workflow": s.workflow_id,
                "version": s.workflow_version,
                "started_at": iso_time(s.started_at),
            }
        if key == "parent":
            return s.parent.context if s.parent is not None else None
        if key == "dept":
            return s.dept if s.dept is not None else {}
        if self._bound is not None and key in self._bound:
            return self._bound[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def scope_of(
    workflow: Workflow, state: ExecutionState, runs: Mapping[str, NodeRun]
) -> Mapping[str, Any]:
    """What expressions read in `state` when its node runs are `runs`: for rendering a node's
    params again outside a step (see connectors/api/node_inputs.py)."""
    return _Scope(workflow, state, runs)


class _NodesView(Mapping[str, Any]):
    """`nodes.<id>` in expressions: built lazily, only for the nodes an expression reads."""

    def __init__(self, runs: Mapping[str, NodeRun]) -> None:
        self._runs = runs

    def __getitem__(self, key: str) -> Any:
        run = self._runs[key]
        error = run.error
        return {
            "output": run.output,
            "status": run.status,
            "error": None if error is None else {"type": error.type, "message": error.message},
        }

    def __iter__(self) -> Iterator[str]:
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)


class Draft:
    """The working copy of one step: mutated freely, frozen again by `build`."""

    def __init__(self, workflow: Workflow, state: ExecutionState, at: int) -> None:
        self.workflow = workflow
        self.state = state
        self.at = at
        self.nodes: dict[str, NodeRun] = dict(state.nodes)
        self.joins: dict[str, JoinState] = dict(state.joins)
        self.status = state.status
        self.output: Any = state.output
        self.error = state.error
        self.completed_at = state.completed_at
        self.timers: dict[str, int] = dict(state.timers)
        self.paused = state.paused
        self.held = state.held
        self.children: dict[str, str] = dict(state.children)
        self.control = state.control
        self.foreach: dict[str, ForeachProgress] = dict(state.foreach)
        self.loops: dict[str, LoopProgress] = dict(state.loops)
        self.outgoing: list[Outgoing] = []
        # The nodes that run once the rest of the step is done (`NodeKind.runs_last`).
        self.readied: list[CompiledNode] = []
        # Set when the execution is refused at its start, before it ran (`began_at`).
        self.refused = False
        # The names expressions read, made once a step: it reads the state and the node runs
        # as they are when read, so one serves every node the step runs.
        self._scope: _Scope | None = None

    def build(self) -> ExecutionState:
        # A direct constructor call (`dataclasses.replace` costs a third of a step), with
        # the fields in their order: matching 25 keywords took as long as the call itself.
        s = self.state
        return ExecutionState(
            s.execution_id,
            s.workflow_id,
            s.workflow_version,
            self.status,
            s.started_at,
            self.at,  # updated_at
            s.input,
            s.event,
            self.output,
            self.error,
            self.completed_at,
            self.nodes,
            self.joins,
            self.timers,
            self.paused,
            self.held,
            s.parent,
            self.children,
            self.control,
            self.foreach,
            self.loops,
            s.dept,
            s.tenant,
            s.admission,
            s.traceparent,
        )

    # -- emitting

    def emit_event(
        self,
        type_: str,
        *,
        node_id: str | None = None,
        attempt: int | None = None,
        data: Any = None,
        error: NodeError | None = None,
        started_at: int | None = None,
    ) -> None:
        s = self.state
        if node_id is None:
            # Pauses and redrives make workflow events happen more than once: the
            # count of control actions so far keeps each id unique.
            event_id = ids.workflow_event_id(s.execution_id, type_, self._generation())
        else:
            event_id = ids.node_event_id(s.execution_id, node_id, attempt or 0, type_)
        # Positional: this runs for every event of every step.
        self.outgoing.append(
            LifecycleEvent(
                event_id,
                type_,
                s.execution_id,
                s.workflow_id,
                s.workflow_version,
                self.at,
                node_id,
                attempt,
                data,
                error,
                s.tenant,
                started_at,
            )
        )

    def _generation(self) -> str:
        return ids.generation(len(self.control))

    def begin(self) -> None:
        """The execution starts running: its root node, and its time limit from now."""
        s = self.state
        self.emit_event("workflow.started", data={"input": s.input, "event": _trigger(s.event)})
        if self.workflow.definition.timeout_ms is not None:
            self.timers[EXECUTION_TIMER] = self.at + self.workflow.definition.timeout_ms
        sla.arm(self)
        self.start_node(self.workflow.nodes[self.workflow.root])

    def start_node(self, node: CompiledNode) -> None:
        """A node became ready: dispatch work at once; give any other control node its own step.

        The transitions topic stays a full audit trail: it holds every input the
        engine takes, and a step's outputs are a pure function of (state, transition),
        so a replay derives the same moves. A work node's move is its task request, a
        delay's its timer, and an end runs once the step is otherwise done (`run_readied`);
        skipping a RunNode record for them saves a broker round trip per node.
        """
        kind = NODE_KINDS[node.type]
        if not kind.dispatched_at_once:
            self.send_run(node.id)
        elif kind.runs_last:
            self.readied.append(node)
        else:
            kind.start(self, node, 1, None)

    def run_readied(self, apart: bool = False) -> None:
        """Run the nodes this step readied to run last, as their RunNode would have: not on
        an execution that has ended or is failing by then, and each once. `apart`: send each
        its RunNode instead (`step`)."""
        while self.readied:
            # A join run here may ready an end (or another join): it runs after, in turn.
            node = self.readied.pop(0)
            if (
                self.error is None
                and self.status == _EXECUTION_RUNNING
                and node.id not in self.nodes
            ):
                if apart:
                    self.send_run(node.id)
                else:
                    self._run(node, 1, None)

    def send_run(self, node_id: str) -> None:
        execution_id = self.state.execution_id
        self.outgoing.append(
            RunNode(ids.run_node_id(execution_id, node_id), execution_id, self.at, node_id)
        )

    def record(
        self, action: str, by: str, at: int, node_id: str | None = None, reason: str = ""
    ) -> None:
        self.control = (*self.control, ControlAction(action, by, at, node_id, reason))

    # -- scope for expressions

    def scope(self, bound: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """What expressions read; `bound` adds a kind's own names (a foreach's `item`)."""
        if bound is not None:
            return _Scope(self.workflow, self.state, self.nodes, bound)
        if self._scope is None:
            self._scope = _Scope(self.workflow, self.state, self.nodes)
        return self._scope

    def kind_of(self, node: CompiledNode) -> NodeKind:
        """How `node` runs: its kind's engine module."""
        return NODE_KINDS[node.type]

    def render(
        self,
        node: CompiledNode,
        param: str,
        default: Any = None,
        scope: Mapping[str, Any] | None = None,
    ) -> Any:
        template = node.params.get(param)
        if template is None:
            return node.node.params.get(param, default)
        return template.render(self.scope() if scope is None else scope)

    def node_traceparent(self, node_id: str, attempt: int) -> str:
        """The traceparent naming a node run's span: what its task request or child carries."""
        return execution_trace(self.state).node_header(node_id, attempt)

    def parent_view(self) -> dict[str, Any]:
        """The execution as a child or a dead-letter record sees it: `{input, vars, event}`."""
        s = self.state
        return {"input": s.input, "vars": self.workflow.definition.variables, "event": s.event}

    # -- transitions

    def run_node(self, t: RunNode) -> str | None:
        node = self.workflow.nodes.get(t.node_id)
        if node is None:
            return f"unknown node {t.node_id!r}"
        if t.node_id in self.nodes:
            return f"node {t.node_id!r} already {self.nodes[t.node_id].status}"
        if not self._ready(node):
            return f"node {t.node_id!r} is not ready: its arrival is not in the state"
        if self.error is not None:
            return "execution is failing; no new node starts"
        self._run(node, 1, None)
        return None

    def node_transition(self, t: Any) -> str | None:
        """A transition addressed to one node: its kind applies it, if the kind owns it."""
        node = self.workflow.nodes.get(t.node_id)
        if node is None:
            return not_owned(t)
        handle = NODE_KINDS[node.type].transitions.get(type(t))
        if handle is None:
            return not_owned(t)
        return handle(self, node, t)

    def admit(self, t: AdmitExecution) -> str | None:
        if self.status != _EXECUTION_QUEUED:
            return f"execution is {self.status}, admitted already"
        self.status = _EXECUTION_RUNNING
        for timer in [k for k in self.timers if k.startswith(BUDGET_DAY_TIMER)]:
            del self.timers[timer]
        self.begin()
        return None

    def ask_admission(self, request_id: str) -> None:
        """Ask the department's admissions for a slot; under a budget per day, again at the
        next UTC midnight for as long as it waits (its new day's budget may admit it)."""
        s = self.state
        assert s.admission is not None
        header = execution_trace(s).header
        self.outgoing.append(
            AdmissionRequested(request_id, s.execution_id, self.at, s.admission, header)
        )
        if self.workflow.definition.budget_per_day is not None:
            due = ids.next_day(self.at)
            self.timers[ids.budget_day_timer(due)] = due

    def cancel(self, t: CancelExecution) -> str | None:
        self.paused, self.held = False, ()
        self.finish(_EXECUTION_CANCELLED, error=NodeError("Cancelled", t.reason or "cancelled"))
        # Recorded after `finish`: the first cancel keeps its plain `workflow.cancelled` id.
        self.record("cancel", t.by, t.at, reason=t.reason)
        return None

    def pause(self, t: PauseExecution) -> str | None:
        if self.status != _EXECUTION_RUNNING:
            return f"execution is {self.status}; only a running execution pauses"
        self.paused = True
        self.record("pause", t.by, t.at, reason=t.reason)
        self.emit_event("workflow.paused", data={"by": t.by, "reason": t.reason})
        return None

    def resume(self, t: ResumeExecution) -> str | None:
        if not self.paused:
            return "execution is not paused"
        held = len(self.held)
        self.paused, self.held = False, ()
        self.record("resume", t.by, t.at, reason=t.reason)
        self.emit_event("workflow.resumed", data={"by": t.by, "held": held, "reason": t.reason})
        return None

    def redrive(self, t: RedriveNode) -> str | None:
        node = self.workflow.nodes.get(t.node_id)
        run = self.nodes.get(t.node_id)
        if node is None:
            return f"unknown node {t.node_id!r}"
        if run is None or run.status != _NODE_FAILED:
            return f"node {t.node_id!r} has not failed"
        if _on_error_edge(node) is not None:
            return f"node {t.node_id!r} failed along its on_error edge: its failure was handled"
        if self.status == _EXECUTION_RUNNING and self.error is not None:
            return "execution is failing; redrive a node once it has stopped"
        problem = None if t.input is None else NODE_KINDS[node.type].patch_problem(node, t.input)
        if problem is not None:
            return problem
        stopped = self.status != _EXECUTION_RUNNING
        self.status, self.error, self.output, self.completed_at = (
            _EXECUTION_RUNNING,
            None,
            None,
            None,
        )
        self.record("redrive", t.by, t.at, t.node_id)
        attempt = run.attempt + 1
        self.emit_event(
            "node.redriven", node_id=node.id, attempt=attempt, data={"by": t.by, "input": t.input}
        )
        self._run(node, attempt, t.input if t.input is not None else run.input)
        if stopped:
            self._take_up_again()
        return None

    def timer_fired(self, t: TimerFired) -> str | None:
        due = self.timers.pop(t.timer_id, None)
        if due is None:
            return f"timer {t.timer_id!r} is not pending"
        if t.timer_id == EXECUTION_TIMER:
            timeout_ms = self.workflow.definition.timeout_ms
            error = NodeError("Timeout", f"the execution did not finish within {timeout_ms} ms")
            self.finish(_EXECUTION_FAILED, error=error)
            return None
        if t.timer_id == SLA_TIMER:
            sla.breached(self)
            return None
        if t.timer_id.startswith(BUDGET_DAY_TIMER):
            if self.status == _EXECUTION_QUEUED:
                self.ask_admission(ids.admission_asked_again_id(self.state.execution_id, self.at))
            return None
        try:
            node_id, attempt, kind = ids.parse_node_timer(t.timer_id)
        except ValueError as exc:
            return str(exc)
        if attempt is None:
            self._join_timed_out(node_id)
            return None
        run = self.nodes.get(node_id)
        if run is None or run.attempt != attempt:
            return None
        node = self.workflow.nodes[node_id]
        if kind == "timeout":
            NODE_KINDS[node.type].timed_out(self, node, run)
        elif kind == "retry":
            if run.status == _NODE_WAITING:
                self._retry(node, run)
        else:
            NODE_KINDS[node.type].timer_fired(self, node, run, kind, due)
        return None

    # -- running a node

    def _run(self, node: CompiledNode, attempt: int, given: Any) -> None:
        """Start attempt `attempt` of `node`; `given` replaces the input of a patchable node."""
        NODE_KINDS[node.type].start(self, node, attempt, given)

    def earlier_errors(self, node_id: str) -> tuple[NodeError, ...]:
        run = self.nodes.get(node_id)
        return run.errors if run is not None else ()

    def failed_to_start(self, node: CompiledNode, attempt: int, exc: ExpressionError) -> None:
        self.emit_event("node.started", node_id=node.id, attempt=attempt)
        self.fail_node(node, attempt, NodeError("ExpressionError", str(exc), node.id), None)

    def link(
        self, node: CompiledNode, context: Mapping[str, Any] | None, item: int | None = None
    ) -> ParentLink:
        """How a child execution that `node` starts points back to this execution."""
        s = self.state
        depth = (s.parent.depth if s.parent is not None else 0) + 1
        return ParentLink(s.execution_id, s.workflow_id, node.id, depth, context, item)

    def cancel_child(self, child: str, reason: str) -> None:
        s = self.state
        self.outgoing.append(
            CancelExecution(ids.child_cancel_id(child), child, self.at, reason, s.execution_id)
        )

    def complete(self, node: CompiledNode, run: NodeRun, output: Any, taken: set[int]) -> None:
        """A waiting node is done: record its output and go on along `taken`."""
        self.clear_timers(node.id)
        self.nodes[node.id] = replace(
            run, status=_NODE_COMPLETED, output=output, error=None, completed_at=self.at
        )
        self.emit_event(
            "node.completed",
            node_id=node.id,
            attempt=run.attempt,
            data=output,
            started_at=run.started_at,
        )
        # A foreach of model calls spends at its end: its items' results are its output.
        if self.over_budget(node.id, output):
            return
        self.go_on(node, taken)

    def clear_timers(self, node_id: str) -> None:
        prefix = ids.node_timer_prefix(node_id)
        for timer_id in [t for t in self.timers if t.startswith(prefix)]:
            if timer_id not in (EXECUTION_TIMER, SLA_TIMER):
                del self.timers[timer_id]

    def attempt_failed(self, node: CompiledNode, run: NodeRun, error: NodeError) -> None:
        """An attempt of a work or foreach node failed: back off and try again, or fail for good."""
        self.timers.pop(timeout_timer(node.id, run.attempt), None)
        retry = node.node.retry
        if (
            self.error is None
            and retry is not None
            and run.attempt < retry.max_attempts
            and (retry.on is None or error.type in retry.on)
        ):
            delay = retry_delay_ms(retry, self.state.execution_id, node.id, run.attempt)
            due = self.at + delay
            self.nodes[node.id] = replace(
                run, status=_NODE_WAITING, error=error, errors=(*run.errors, error)
            )
            self.timers[ids.node_timer(node.id, run.attempt, "retry")] = due
            self.emit_event(
                "node.retrying",
                node_id=node.id,
                attempt=run.attempt,
                data={"next_attempt": run.attempt + 1, "retry_at": iso_time(due)},
                error=error,
                started_at=run.started_at,
            )
        else:
            self.fail_node(node, run.attempt, error, run)

    def _retry(self, node: CompiledNode, run: NodeRun) -> None:
        if self.error is not None:
            # The execution is failing: no new attempt starts, as no new node does.
            self.nodes[node.id] = replace(run, status=_NODE_CANCELLED, completed_at=self.at)
            return
        self._run(node, run.attempt + 1, run.input)

    def _join_timed_out(self, node_id: str) -> None:
        """A join waited too long: it fires with the branches that arrived, or fails without any."""
        node = self.workflow.nodes.get(node_id)
        joined = self.joins.get(node_id)
        if node is None or joined is None or joined.fired or self.error is not None:
            return
        self.joins[node_id] = replace(joined, fired=True)
        if joined.taken:
            self.start_node(node)
            return
        message = f"no branch arrived within {node.join_timeout_ms} ms"
        self.fail_node(node, 1, NodeError("Timeout", message, node_id), None, started=False)

    def over_budget(self, node_id: str, output: Any) -> bool:
        """Whether `node_id`'s output, just recorded, took the execution past its budget:
        then the execution fails `budget.exceeded` at once, as on its timeout, so nothing
        more is spent on it (work in flight is cancelled, no node starts)."""
        budget = self.workflow.definition.budget
        if budget is None or self.error is not None:
            # A failing execution keeps the error that fails it.
            return False
        calls = model_calls(self.workflow.nodes[node_id].node, output)
        if not any("cost" in call for call in calls):
            return False
        total = spent(self.nodes.values(), self.workflow)
        if total <= budget:
            return False
        message = (
            f"spent {total:g} after node {node_id!r}, over the per-execution budget of"
            f" {budget:g} its department sets (settings.budget.per_execution)"
        )
        self.finish(_EXECUTION_FAILED, error=NodeError("budget.exceeded", message, node_id))
        return True

    def fail_node(
        self,
        node: CompiledNode,
        attempt: int,
        error: NodeError,
        run: NodeRun | None,
        *,
        started: bool = True,
    ) -> None:
        """`node` failed for good: along its on_error edge, else the execution fails or parks.

        Without `run`, the attempt started in this step (`started`: its `node.started` was
        emitted; a join that timed out before any branch arrived never started).

        A failure its on_error edge handles does not stop the execution and needs
        no redrive. Any other is dead-lettered, whatever the node's type and retry
        settings: whoever finds the execution failed or parked can redrive it from
        that node. The letter is this step's outgoing message, so a redelivered
        transition (ignored: the node is no longer running) writes no second one.
        """
        self.clear_timers(node.id)
        base = run or NodeRun(
            node.id,
            _NODE_RUNNING,
            attempt,
            started_at=self.at,
            errors=self.earlier_errors(node.id),
        )
        failed = replace(
            base,
            status=_NODE_FAILED,
            attempt=attempt,
            error=error,
            errors=(*base.errors, error),
            completed_at=self.at,
        )
        self.nodes[node.id] = failed
        self.emit_event(
            "node.failed",
            node_id=node.id,
            attempt=attempt,
            error=error,
            started_at=base.started_at if started else None,
        )
        handler = _on_error_edge(node)
        if handler is not None:
            self.go_on(node, {handler.index})
            return
        self._dead_letter(failed)
        if self.error is None:
            self.error = error
        if node.id in self.workflow.fail_fast:
            self.finish(self._stopped_status(), error=self.error)
        else:
            self.fail_when_drained()

    def _dead_letter(self, run: NodeRun) -> None:
        s = self.state
        letter_id = ids.dead_letter_id(s.execution_id, run.node_id, run.attempt)
        context = {
            **self.parent_view(),
            "workflow_id": s.workflow_id,
            "version": s.workflow_version,
        }
        self.outgoing.append(
            DeadLetterNode(
                letter_id,
                s.execution_id,
                s.workflow_id,
                s.workflow_version,
                run.node_id,
                self.at,
                run.input,
                run.errors,
                context,
                s.tenant,
            )
        )
        self.emit_event(
            "node.dead_lettered",
            node_id=run.node_id,
            attempt=run.attempt,
            data={"dead_letter_id": letter_id},
            error=run.error,
        )

    def began_at(self) -> int | None:
        """When the execution began to run, for the event that ends it: its start (for one a
        department's cap queued, when it was accepted, not admitted: the state keeps no
        admission time). None when it never ran (refused at its start, cancelled while
        queued) or when a redrive took it up after it had ended (failed or cancelled: only a
        workflow that parks on failure is redriven before its end), as the stats always
        counted such an end: without a duration."""
        s = self.state
        if s.status == _EXECUTION_QUEUED or self.refused:
            return None
        if self.workflow.definition.on_failure != "park" and any(
            c.action == "redrive" for c in self.control
        ):
            return None
        return s.started_at

    def _stopped_status(self) -> str:
        """How a node failing for good ends the execution: failed, or parked for a redrive."""
        return (
            _EXECUTION_PARKED
            if self.workflow.definition.on_failure == "park"
            else _EXECUTION_FAILED
        )

    def fail_when_drained(self) -> None:
        if not any(r.status == _NODE_RUNNING for r in self.nodes.values()):
            self.finish(self._stopped_status(), error=self.error)

    # -- redrive

    def _take_up_again(self) -> None:
        """A redrive took up a stopped execution: what the stop cut short goes on.

        Nodes the stop cancelled run again (a new attempt), and so do other nodes
        that failed it (a branch that failed while it drained), or the execution
        would wait for them forever; nodes that ended while the execution drained
        pass their results on; nodes whose arrival is
        recorded but whose step the failing execution refused start now. The
        execution deadline is set again when it still lies ahead; join timeouts
        are not (such a join waits for its branches).
        """
        if self._stopping():
            return
        timeout_ms = self.workflow.definition.timeout_ms
        if timeout_ms is not None and self.state.started_at + timeout_ms > self.at:
            self.timers[EXECUTION_TIMER] = self.state.started_at + timeout_ms
        for node_id, run in list(self.nodes.items()):
            if self._stopping():
                return
            node = self.workflow.nodes[node_id]
            if run.status == _NODE_CANCELLED or (
                run.status == _NODE_FAILED and _on_error_edge(node) is None
            ):
                self._run(node, run.attempt + 1, run.input)
            elif not self._passed_on(node):
                taken = self._taken_by(node, run)
                if taken is not None:
                    self.propagate(node, taken)
        for node in self.workflow.nodes.values():
            if self._stopping():
                return
            if node.id not in self.nodes and self._ready(node):
                self.start_node(node)

    def _stopping(self) -> bool:
        """Whether the execution has ended again or is failing: then nothing more starts."""
        return self.error is not None or self.status != _EXECUTION_RUNNING

    def _passed_on(self, node: CompiledNode) -> bool:
        """Whether the arrivals along `node`'s outgoing edges are in the state."""
        if not node.outgoing:
            return True
        for edge in node.outgoing:
            if edge.target in self.nodes:
                return True
            joined = self.joins.get(edge.target)
            if joined is not None and (
                joined.fired or edge.index in joined.taken or edge.index in joined.dead
            ):
                return True
        return False

    def _taken_by(self, node: CompiledNode, run: NodeRun) -> set[int] | None:
        """The edges a node that ended while the execution drained takes."""
        if run.status == _NODE_COMPLETED:
            timeout_edges = {e.index for e in node.outgoing if e.timeout}
            if timeout_edges and run.output == {"timed_out": True}:
                return timeout_edges
            return normal_edges(node)
        handler = _on_error_edge(node) if run.status == _NODE_FAILED else None
        return {handler.index} if handler is not None else None

    # -- the pieces

    def _ready(self, node: CompiledNode) -> bool:
        """Whether the state holds the arrival that sends `node` its RunNode.

        A step that sends a RunNode can be lost after sending it (the worker dies
        before committing the state); the RunNode may then be delivered before
        that step's record is applied again, and must not run the node on a state
        without its inputs. The record, applied again, sends the RunNode again.
        Propagation happens in the step that completes a node, so a completed
        source means its edge was taken, unless the target is already skipped;
        a failed source means its on_error edge was.
        """
        if not node.inbound:
            return True
        if len(node.inbound) > 1:
            joined = self.joins.get(node.id)
            return joined is not None and joined.fired
        edge = node.inbound[0]
        source = self.nodes.get(edge.source)
        if source is None:
            return False
        return source.status == _NODE_COMPLETED or (edge.on_error and source.status == _NODE_FAILED)

    def go_on(self, node: CompiledNode, taken: set[int]) -> None:
        """After a node ends: on along `taken`, unless the execution is failing and drains."""
        if self.error is not None:
            self.fail_when_drained()
        else:
            self.propagate(node, taken)

    def output_of(self, node_id: str) -> Any:
        run = self.nodes.get(node_id)
        return run.output if run is not None else None

    def propagate(self, node: CompiledNode, taken: set[int]) -> None:
        """Send each outgoing edge's target its arrival: taken edges bring a branch, others are dead."""
        pending: list[tuple[CompiledEdge, bool]] = [(e, e.index in taken) for e in node.outgoing]
        while pending:
            edge, alive = pending.pop(0)
            target = self.workflow.nodes[edge.target]
            fires = self._arrive(target, edge, alive)
            if fires is True:
                self.start_node(target)
            elif fires is False:
                self.nodes[target.id] = NodeRun(target.id, _NODE_SKIPPED, completed_at=self.at)
                self.emit_event("node.skipped", node_id=target.id)
                pending.extend((e, False) for e in target.outgoing)

    def _arrive(self, target: CompiledNode, edge: CompiledEdge, alive: bool) -> bool | None:
        """True: the target runs now; False: it is skipped; None: it waits for more arrivals."""
        if len(target.inbound) == 1:
            return alive
        joined = self.joins.get(target.id, JoinState(target.id))
        if joined.fired or edge.index in joined.taken or edge.index in joined.dead:
            return None
        taken = (*joined.taken, edge.index) if alive else joined.taken
        dead = joined.dead if alive else (*joined.dead, edge.index)
        total = len(target.inbound)
        live = total - len(dead)
        wait_for = target.wait_for
        # Validation lets a join wait for a count, "any" or "all".
        need = wait_for if isinstance(wait_for, int) else 1 if wait_for == "any" else total
        fires: bool | None = None
        if live == 0:
            fires = False
        elif taken and len(taken) >= min(need, live):
            fires = True
        self.joins[target.id] = JoinState(target.id, taken, dead, fires is not None)
        if target.join_timeout_ms is not None:
            if fires is not None:
                self.timers.pop(_join_timer(target.id), None)
            elif not joined.taken and not joined.dead:
                # The first arrival: the join begins to wait.
                self.timers[_join_timer(target.id)] = self.at + target.join_timeout_ms
        return fires

    def finish(self, status: str, *, output: Any = None, error: NodeError | None = None) -> None:
        """End the execution (or park it): work in flight is cancelled, and so are children."""
        self.status = status
        self.output = output
        self.error = error
        self.completed_at = self.at
        self.timers = {}
        for node_id, run in list(self.nodes.items()):
            if run.status in IN_FLIGHT:
                self.nodes[node_id] = replace(run, status=_NODE_CANCELLED, completed_at=self.at)
        for kind in FINISHING:
            kind.execution_finishing(self)
        data = output if status == _EXECUTION_COMPLETED else None
        self.emit_event(f"workflow.{status}", data=data, error=error, started_at=self.began_at())
        s = self.state
        for child in self.children.values():
            self.cancel_child(child, f"parent execution {s.execution_id} {status}")
        self.children = {}
        if s.admission is not None and status in TERMINAL:
            # Its slot under the department's cap frees (or its place in the queue, if it
            # ends queued); a parked execution keeps its slot for the redrive.
            self.outgoing.append(
                AdmissionReleased(
                    ids.admission_released_id(s.execution_id, self._generation()),
                    s.execution_id,
                    self.at,
                    s.admission,
                    spent(self.nodes.values(), self.workflow),
                )
            )
        parent = s.parent
        if parent is not None and status in TERMINAL:
            # Sent whether or not the parent waits: only the parent's state knows.
            self.outgoing.append(
                ChildFinished(
                    ids.finished_id(s.execution_id, self._generation()),
                    parent.execution_id,
                    self.at,
                    parent.node_id,
                    s.execution_id,
                    status,
                    output,
                    error,
                    parent.item,
                )
            )


_APPLY: dict[type, Callable[[Draft, Any], str | None]] = {
    RunNode: Draft.run_node,
    NodeCompleted: Draft.node_transition,
    NodeFailed: Draft.node_transition,
    CancelExecution: Draft.cancel,
    EventArrived: Draft.node_transition,
    TimerFired: Draft.timer_fired,
    ApprovalDecided: Draft.node_transition,
    ChildFinished: Draft.node_transition,
    PauseExecution: Draft.pause,
    ResumeExecution: Draft.resume,
    RedriveNode: Draft.redrive,
    ItemsCollected: Draft.node_transition,
    AdmitExecution: Draft.admit,
}
