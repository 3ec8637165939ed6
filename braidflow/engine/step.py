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

A foreach node's attempt runs its items (`engine/foreach.py` keeps the books):
each item's result is recorded, and flushed to the runtime in chunks; once all
are in, the runtime hands the results back (`CollectItems`, `ItemsCollected`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from braidflow.engine.foreach import (
    DEFAULT_CONCURRENCY,
    collected,
    collection_error,
    dispatched,
    flush,
    foreach_output,
    item_key,
    may_dispatch,
    settled,
)
from braidflow.engine.messages import (
    ApprovalDecided,
    AwaitEvent,
    CancelExecution,
    ChildFinished,
    CollectItems,
    DeadLetterNode,
    DropItems,
    EventArrived,
    ItemError,
    ItemsCollected,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    ParentLink,
    PauseExecution,
    PublishEvent,
    RedriveNode,
    ResumeExecution,
    RunNode,
    StartExecution,
    TaskRequest,
    TimerFired,
    Transition,
)
from braidflow.engine.state import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PARKED,
    RUNNING,
    SKIPPED,
    TERMINAL,
    WAITING,
    ControlAction,
    ExecutionState,
    ForeachProgress,
    JoinState,
    NodeRun,
    iso_time,
)
from braidflow.topology.durations import parse_timestamp
from braidflow.topology.event_types import topic_segment_problem
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.kinds import WORK_TYPES
from braidflow.topology.model import DEFAULT_CHOICES, Retry
from braidflow.topology.workflow import CompiledEdge, CompiledNode, Workflow

MAX_SUBWORKFLOW_DEPTH = 16
"""How deep workflow calls may nest; a deeper start fails (a workflow calling itself ends here)."""

EXECUTION_TIMER = "execution/timeout"
# Node types whose resolved input a redrive may replace (a foreach's is its list of items).
PATCHABLE_TYPES = WORK_TYPES | {"subworkflow", "foreach"}
# Node types whose failed attempt is retried by their `retry`, and whose timeout fails it.
ATTEMPT_TYPES = WORK_TYPES | {"foreach"}


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
        seed = f"{execution_id}/{node_id}/{attempt}".encode()
        share = int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "big") / 2**64
        delay = int(delay * (0.5 + share / 2))
    return delay


def child_execution_id(execution_id: str, node_id: str, attempt: int) -> str:
    """The id of the child execution a subworkflow node starts on `attempt`.

    Node ids never start with a digit, so the attempt suffix cannot be mistaken
    for a node of a deeper call.
    """
    child = f"{execution_id}.{node_id}"
    return child if attempt == 1 else f"{child}.{attempt}"


def step(workflow: Workflow, state: ExecutionState | None, transition: Transition) -> StepResult:
    """Apply one transition to one execution."""
    if isinstance(transition, StartExecution):
        if state is not None:
            return StepResult(state, ignored="execution already started")
        if transition.workflow_version == 0:
            # "The latest version": which one that is depends on the catalog, not the engine.
            return StepResult(None, ignored="workflow version 0 must be resolved before the start")
        return _start(workflow, transition)
    if state is None:
        return StepResult(None, ignored="unknown execution")
    return _apply(workflow, state, transition, transition.at)


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
    draft = _Draft(workflow, state, at)
    draft.finish(FAILED, error=error)
    return StepResult(draft.build(), tuple(draft.outgoing))


def fail_start(workflow: Workflow, t: StartExecution, error: NodeError) -> StepResult:
    """A new execution that fails at once, keeping neither the start's input nor its event:
    they are what the runtime could not store."""
    return fail_execution(workflow, _initial_state(t, None, None), error, t.at)


def _apply(workflow: Workflow, state: ExecutionState, t: Transition, at: int) -> StepResult:
    """Apply `t` to an existing execution, as of `at`."""
    apply = _APPLY.get(type(t))
    if apply is None:
        return StepResult(state, ignored=f"unsupported transition {type(t).__name__}")
    if state.finished and not (state.status == FAILED and isinstance(t, RedriveNode)):
        return StepResult(state, ignored=f"execution already {state.status}")
    if state.status == PARKED and not isinstance(t, RedriveNode | CancelExecution):
        return StepResult(state, ignored="execution is parked: only a redrive or a cancel applies")
    if state.paused and not isinstance(t, ResumeExecution | CancelExecution):
        return _hold(workflow, state, t)
    draft = _Draft(workflow, state, at)
    reason = apply(draft, t)
    if reason is not None:
        return StepResult(state, ignored=reason)
    result = StepResult(draft.build(), tuple(draft.outgoing))
    if isinstance(t, ResumeExecution):
        return _release(workflow, result, state.held, at)
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
    workflow: Workflow, resumed: StepResult, held: tuple[Transition, ...], at: int
) -> StepResult:
    """After a resume: apply the held transitions in arrival order, as of the resume."""
    state, outgoing = resumed.state, list(resumed.outgoing)
    assert state is not None
    for t in held:
        result = _apply(workflow, state, t, at)
        if result.ignored is None and result.state is not None:
            state = result.state
            outgoing.extend(result.outgoing)
    return StepResult(state, tuple(outgoing))


def _initial_state(
    t: StartExecution, input_: Any, event: Mapping[str, Any] | None
) -> ExecutionState:
    return ExecutionState(
        execution_id=t.execution_id,
        workflow_id=t.workflow_id,
        workflow_version=t.workflow_version,
        status=RUNNING,
        started_at=t.at,
        updated_at=t.at,
        input=input_,
        event=event,
        parent=t.parent,
    )


def _start(workflow: Workflow, t: StartExecution) -> StepResult:
    state = _initial_state(t, t.input, t.event)
    draft = _Draft(workflow, state, t.at)
    problems = input_problems(workflow, t.input)
    if t.parent is not None and t.parent.depth > MAX_SUBWORKFLOW_DEPTH:
        message = (
            f"workflow calls nest deeper than {MAX_SUBWORKFLOW_DEPTH}"
            f" ({t.parent.workflow_id} -> {t.workflow_id}, execution {t.execution_id})"
        )
        draft.finish(FAILED, error=NodeError("SubworkflowDepth", message))
    elif problems:
        draft.finish(FAILED, error=NodeError("InputInvalid", "; ".join(problems)))
    else:
        draft.emit_event("workflow.started", data={"input": t.input, "event": _trigger(t.event)})
        if workflow.definition.timeout_ms is not None:
            draft.timers[EXECUTION_TIMER] = t.at + workflow.definition.timeout_ms
        draft.start_node(workflow.nodes[workflow.root])
    return StepResult(draft.build(), tuple(draft.outgoing))


def _trigger(event: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What `workflow.started` says of the event that started the execution."""
    if event is None:
        return None
    return {k: event.get(k) for k in ("id", "type", "source", "subject")}


def _timeout_timer(node_id: str, attempt: int) -> str:
    return f"{node_id}/{attempt}/timeout"


def _join_timer(node_id: str) -> str:
    return f"{node_id}/join-timeout"


def _normal_edges(node: CompiledNode) -> set[int]:
    """The edges a node that completed normally takes (all but timeout and on_error edges)."""
    return {e.index for e in node.outgoing if not e.timeout and not e.on_error}


def _child_error(t: ChildFinished) -> NodeError:
    """Why a child execution that did not complete fails the node (or item) that waited."""
    cause = t.error or NodeError("Cancelled", t.status)
    return NodeError(cause.type, f"{t.child_execution_id}: {cause.message}", t.node_id)


def _on_error_edge(node: CompiledNode) -> CompiledEdge | None:
    return next((e for e in node.outgoing if e.on_error), None)


def _json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words: `null`, `an array`, `a string`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, dict) else "an array"


def _holds(edge: CompiledEdge, scope: Mapping[str, Any]) -> bool:
    assert edge.when is not None
    value = edge.when.evaluate(scope)
    if not isinstance(value, bool):
        raise ExpressionError(f"`{edge.when.source}` gave {value!r}, not a boolean")
    return value


_SCOPE_NAMES = ("input", "vars", "nodes", "event", "execution", "parent")


class _Scope(Mapping[str, Any]):
    """The names expressions read, each built only when an expression reads it.

    `item` (index, element) binds `index` and `item` for what a foreach renders per item.
    """

    def __init__(
        self,
        workflow: Workflow,
        state: ExecutionState,
        runs: Mapping[str, NodeRun],
        item: tuple[int, Any] | None = None,
    ):
        self._workflow = workflow
        self._state = state
        self._runs = runs
        self._item = item
        self._names = _SCOPE_NAMES if item is None else (*_SCOPE_NAMES, "index", "item")

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
        if self._item is not None and key == "index":
            return self._item[0]
        if self._item is not None and key == "item":
            return self._item[1]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


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


class _Draft:
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
        self.outgoing: list[Outgoing] = []

    def build(self) -> ExecutionState:
        # A direct constructor call: `dataclasses.replace` costs a third of a step.
        s = self.state
        return ExecutionState(
            execution_id=s.execution_id,
            workflow_id=s.workflow_id,
            workflow_version=s.workflow_version,
            status=self.status,
            started_at=s.started_at,
            updated_at=self.at,
            input=s.input,
            event=s.event,
            output=self.output,
            error=self.error,
            completed_at=self.completed_at,
            nodes=self.nodes,
            joins=self.joins,
            timers=self.timers,
            paused=self.paused,
            held=self.held,
            parent=s.parent,
            children=self.children,
            control=self.control,
            foreach=self.foreach,
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
    ) -> None:
        s = self.state
        if node_id is None:
            # Pauses and redrives make workflow events happen more than once: the
            # count of control actions so far keeps each id unique.
            event_id = f"{s.execution_id}/{type_}{self._generation()}"
        else:
            event_id = f"{s.execution_id}/{node_id}/{attempt or 0}/{type_}"
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
            )
        )

    def _generation(self) -> str:
        return f"/{len(self.control)}" if self.control else ""

    def start_node(self, node: CompiledNode) -> None:
        """A node became ready: dispatch work at once; give any other node its own step.

        Each control step is one record on the transitions topic, so the topic
        is a full audit trail; a work node's move is its task request, and
        skipping a RunNode record for it saves a broker round trip per node.
        """
        if node.type in WORK_TYPES:
            self._dispatch(node, 1, None)
        else:
            self.send_run(node.id)

    def send_run(self, node_id: str) -> None:
        execution_id = self.state.execution_id
        self.outgoing.append(
            RunNode(f"{execution_id}/{node_id}/run", execution_id, self.at, node_id)
        )

    def record(
        self, action: str, by: str, at: int, node_id: str | None = None, reason: str = ""
    ) -> None:
        self.control = (*self.control, ControlAction(action, by, at, node_id, reason))

    # -- scope for expressions

    def scope(self, item: tuple[int, Any] | None = None) -> Mapping[str, Any]:
        return _Scope(self.workflow, self.state, self.nodes, item)

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

    def _parent_view(self) -> dict[str, Any]:
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

    def node_completed(self, t: NodeCompleted) -> str | None:
        if t.item is not None:
            return self._item_finished(t.node_id, t.attempt, t.item, t.output, None)
        run = self.nodes.get(t.node_id)
        if run is None or run.status != RUNNING or run.attempt != t.attempt:
            return f"node {t.node_id!r} attempt {t.attempt} is not running"
        if t.node_id in self.foreach:
            return f"node {t.node_id!r} is a foreach: only its items complete"
        if self.timers:
            self.timers.pop(_timeout_timer(t.node_id, t.attempt), None)
        self.nodes[t.node_id] = NodeRun(
            t.node_id,
            COMPLETED,
            run.attempt,
            run.input,
            t.output,
            None,
            run.started_at,
            t.at,
            run.errors,
        )
        self.emit_event("node.completed", node_id=t.node_id, attempt=t.attempt, data=t.output)
        node = self.workflow.nodes[t.node_id]
        self._continue(node, _normal_edges(node))
        return None

    def node_failed(self, t: NodeFailed) -> str | None:
        if t.item is not None:
            return self._item_finished(t.node_id, t.attempt, t.item, None, t.error)
        run = self.nodes.get(t.node_id)
        if run is None or run.status != RUNNING or run.attempt != t.attempt:
            return f"node {t.node_id!r} attempt {t.attempt} is not running"
        if t.node_id in self.foreach:
            return f"node {t.node_id!r} is a foreach: only its items fail"
        error = replace(t.error, node_id=t.node_id)
        self._attempt_failed(self.workflow.nodes[t.node_id], run, error)
        return None

    def cancel(self, t: CancelExecution) -> str | None:
        self.paused, self.held = False, ()
        self.finish(CANCELLED, error=NodeError("Cancelled", t.reason or "cancelled"))
        # Recorded after `finish`: the first cancel keeps its plain `workflow.cancelled` id.
        self.record("cancel", t.by, t.at, reason=t.reason)
        return None

    def pause(self, t: PauseExecution) -> str | None:
        if self.status != RUNNING:
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

    def event_arrived(self, t: EventArrived) -> str | None:
        run = self.nodes.get(t.node_id)
        node = self.workflow.nodes.get(t.node_id)
        if run is None or node is None or run.status != WAITING or node.type != "wait_event":
            return f"node {t.node_id!r} is not waiting for an event"
        self._complete(node, run, dict(t.event), _normal_edges(node))
        return None

    def approval_decided(self, t: ApprovalDecided) -> str | None:
        node = self.workflow.nodes.get(t.node_id)
        run = self.nodes.get(t.node_id)
        if node is None or node.type != "approval":
            return f"node {t.node_id!r} is not an approval"
        if run is not None and run.status == COMPLETED:
            return f"approval {t.node_id!r} already decided"
        if run is None or run.status != WAITING:
            return f"approval {t.node_id!r} is not waiting for a decision"
        choices = list(node.node.params.get("choices", DEFAULT_CHOICES))
        if t.choice not in choices:
            return f"choice {t.choice!r} is not one of {choices}"
        # The API checks the reply first; the engine stays safe against any sender.
        if node.reply_validator is not None:
            problem = next(iter(node.reply_validator.iter_errors(t.data)), None)
            if problem is not None:
                return f"data does not fit the approval's input schema: {problem.message}"
        self.record("approval", t.by, t.at, t.node_id)
        output = {
            "choice": t.choice,
            "by": t.by,
            "comment": t.comment,
            "data": t.data,
            "decided_at": iso_time(t.at),
            "decision_id": t.decision_id,
        }
        self._complete(node, run, output, _normal_edges(node))
        return None

    def child_finished(self, t: ChildFinished) -> str | None:
        if t.item is not None:
            return self._item_child_finished(t)
        run = self.nodes.get(t.node_id)
        if (
            run is None
            or run.status != WAITING
            or self.children.get(t.node_id) != t.child_execution_id
        ):
            return f"node {t.node_id!r} is not waiting for child {t.child_execution_id!r}"
        del self.children[t.node_id]
        node = self.workflow.nodes[t.node_id]
        if t.status == COMPLETED:
            self._complete(node, run, t.output, _normal_edges(node))
            return None
        self._fail_node(node, run.attempt, _child_error(t), run)
        return None

    def _item_child_finished(self, t: ChildFinished) -> str | None:
        assert t.item is not None
        progress = self.foreach.get(t.node_id)
        key = item_key(t.node_id, t.item)
        if progress is None or self.children.get(key) != t.child_execution_id:
            child = t.child_execution_id
            return f"item {t.item} of node {t.node_id!r} is not waiting for child {child!r}"
        del self.children[key]
        error = None if t.status == COMPLETED else _child_error(t)
        return self._item_finished(t.node_id, progress.attempt, t.item, t.output, error)

    def items_collected(self, t: ItemsCollected) -> str | None:
        progress = self.foreach.get(t.node_id)
        if progress is None or progress.attempt != t.attempt or not collected(progress):
            return f"node {t.node_id!r} attempt {t.attempt} is not collecting its items"
        node = self.workflow.nodes[t.node_id]
        run = self.nodes[t.node_id]
        self._drop_items(t.node_id)
        error = t.error or collection_error(progress, t)
        if error is not None:
            self._attempt_failed(node, run, replace(error, node_id=node.id))
            return None
        continue_on_error = node.node.params.get("continue_on_error", False)
        self._complete(
            node, run, foreach_output(t.results, t.errors, continue_on_error), _normal_edges(node)
        )
        return None

    def redrive(self, t: RedriveNode) -> str | None:
        node = self.workflow.nodes.get(t.node_id)
        run = self.nodes.get(t.node_id)
        if node is None:
            return f"unknown node {t.node_id!r}"
        if run is None or run.status != FAILED:
            return f"node {t.node_id!r} has not failed"
        if _on_error_edge(node) is not None:
            return f"node {t.node_id!r} failed along its on_error edge: its failure was handled"
        if self.status == RUNNING and self.error is not None:
            return "execution is failing; redrive a node once it has stopped"
        if t.input is not None and node.type not in PATCHABLE_TYPES:
            return f"a {node.type} node takes no patched input"
        if t.input is not None and node.type == "foreach" and not isinstance(t.input, list):
            return "a foreach node's patched input is its list of items"
        stopped = self.status != RUNNING
        self.status, self.error, self.output, self.completed_at = RUNNING, None, None, None
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
            self.finish(FAILED, error=error)
            return None
        node_id, _, kind = t.timer_id.rpartition("/")
        if kind == "join-timeout":
            self._join_timed_out(node_id)
            return None
        node_id, _, attempt = node_id.rpartition("/")
        run = self.nodes.get(node_id)
        if run is None or str(run.attempt) != attempt:
            return None
        node = self.workflow.nodes[node_id]
        if kind == "timeout":
            self._timed_out(node, run)
        elif kind == "retry" and run.status == WAITING:
            self._retry(node, run)
        elif kind == "delay" and run.status == WAITING:
            self._complete(node, run, {"waited_until": iso_time(due)}, _normal_edges(node))
        return None

    # -- running a node

    def _run(self, node: CompiledNode, attempt: int, given: Any) -> None:
        """Start attempt `attempt` of `node`; `given` replaces the input of a patchable node."""
        kind = node.type
        if kind in WORK_TYPES:
            self._dispatch(node, attempt, given)
        elif kind == "wait_event":
            self._await(node, attempt)
        elif kind == "delay":
            self._delay(node, attempt)
        elif kind == "approval":
            self._ask(node, attempt)
        elif kind == "subworkflow":
            self._call(node, attempt, given)
        elif kind == "foreach":
            self._fan_out(node, attempt, given)
        else:
            self._run_control(node, attempt)

    def _earlier_errors(self, node_id: str) -> tuple[NodeError, ...]:
        run = self.nodes.get(node_id)
        return run.errors if run is not None else ()

    def _failed_to_start(self, node: CompiledNode, attempt: int, exc: ExpressionError) -> None:
        self.emit_event("node.started", node_id=node.id, attempt=attempt)
        self._fail_node(node, attempt, NodeError("ExpressionError", str(exc), node.id), None)

    def _run_control(self, node: CompiledNode, attempt: int) -> None:
        self.emit_event("node.started", node_id=node.id, attempt=attempt)
        try:
            output, taken = self._decide(node)
        except ExpressionError as exc:
            self._fail_node(node, attempt, NodeError("ExpressionError", str(exc), node.id), None)
            return
        if node.type == "end" and not isinstance(output, Mapping):
            # A lone `${...}` output keeps its value's type, known only now.
            message = f"the output of end node {node.id!r} is {_json_kind(output)}, not an object"
            self._fail_node(node, attempt, NodeError("InvalidOutput", message, node.id), None)
            return
        errors = self._earlier_errors(node.id)
        self.nodes[node.id] = NodeRun(
            node.id, COMPLETED, attempt, None, output, None, self.at, self.at, errors
        )
        self.emit_event("node.completed", node_id=node.id, attempt=attempt, data=output)
        if node.type == "end":
            self.finish(COMPLETED, output=output)
        else:
            self._propagate(node, taken)

    def _dispatch(self, node: CompiledNode, attempt: int, given: Any) -> None:
        """Send an attempt of a work node to an executor; `given` is its input (None: render it)."""
        if given is None:
            try:
                given = self._request_input(node, self.scope())
            except ExpressionError as exc:
                self._failed_to_start(node, attempt, exc)
                return
        execution_id = self.state.execution_id
        previous = self.nodes.get(node.id)
        self.nodes[node.id] = NodeRun(
            node.id,
            RUNNING,
            attempt,
            given,
            None,
            previous.error if previous is not None else None,
            self.at,
            None,
            previous.errors if previous is not None else (),
        )
        self.emit_event("node.started", node_id=node.id, attempt=attempt, data=given)
        if node.node.timeout_ms is not None:
            self.timers[_timeout_timer(node.id, attempt)] = self.at + node.node.timeout_ms
        key = f"{execution_id}:{node.id}:{attempt}"
        self.outgoing.append(self._task_request(node, attempt, key, given))

    def _task_request(
        self, node: CompiledNode, attempt: int, key: str, given: Any, item: int | None = None
    ) -> TaskRequest:
        return TaskRequest(
            execution_id=self.state.execution_id,
            workflow_id=self.state.workflow_id,
            node_id=node.id,
            kind=node.type,
            attempt=attempt,
            idempotency_key=key,
            at=self.at,
            input=given,
            handler=node.node.params.get("handler") if node.type == "task" else None,
            timeout_ms=node.node.timeout_ms,
            item=item,
        )

    def _request_input(self, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        if node.type == "task":
            return self.render(node, "input", scope=scope)
        return {
            "method": node.node.params["method"],
            "url": self.render(node, "url", scope=scope),
            "headers": self.render(node, "headers", {}, scope),
            "query": self.render(node, "query", {}, scope),
            "body": self.render(node, "body", scope=scope),
            "expect_status": node.node.params.get("expect_status"),
        }

    def _await(self, node: CompiledNode, attempt: int) -> None:
        """Park at a wait_event node: register the wait and, with a timeout, set its timer."""
        self.emit_event("node.started", node_id=node.id, attempt=attempt)
        event_type = node.node.params["type"]
        try:
            context = self._correlation_context(node)
        except ExpressionError as exc:
            self._fail_node(node, attempt, NodeError("ExpressionError", str(exc), node.id), None)
            return
        self.nodes[node.id] = NodeRun(
            node.id,
            WAITING,
            attempt,
            {"type": event_type},
            started_at=self.at,
            errors=self._earlier_errors(node.id),
        )
        expires_at = None
        if node.node.timeout_ms is not None:
            expires_at = self.at + node.node.timeout_ms
            self.timers[_timeout_timer(node.id, attempt)] = expires_at
        s = self.state
        self.outgoing.append(
            AwaitEvent(
                f"{s.execution_id}/{node.id}/{attempt}/await",
                s.execution_id,
                s.workflow_id,
                s.workflow_version,
                node.id,
                event_type,
                self.at,
                expires_at,
                context,
            )
        )

    def _delay(self, node: CompiledNode, attempt: int) -> None:
        """Wait until a time: a timer, or nothing to wait for when the time has passed."""
        try:
            due = self._delay_until(node)
        except ExpressionError as exc:
            self._failed_to_start(node, attempt, exc)
            return
        until = iso_time(due)
        self.emit_event("node.started", node_id=node.id, attempt=attempt, data={"until": until})
        run = NodeRun(
            node.id,
            WAITING,
            attempt,
            {"until": until},
            started_at=self.at,
            errors=self._earlier_errors(node.id),
        )
        self.nodes[node.id] = run
        if due <= self.at:
            self._complete(node, run, {"waited_until": until}, _normal_edges(node))
        else:
            self.timers[f"{node.id}/{attempt}/delay"] = due

    def _delay_until(self, node: CompiledNode) -> int:
        if node.delay_ms is not None:
            return self.at + node.delay_ms
        until = self.render(node, "until")
        if not isinstance(until, str):
            raise ExpressionError(f"params.until gave {until!r}, not an ISO-8601 timestamp")
        try:
            return parse_timestamp(until)
        except ValueError as exc:
            raise ExpressionError(f"params.until: {exc}") from None

    def _ask(self, node: CompiledNode, attempt: int) -> None:
        """Park at an approval node until someone decides (or its timeout)."""
        try:
            message = self.render(node, "message")
        except ExpressionError as exc:
            self._failed_to_start(node, attempt, exc)
            return
        choices = list(node.node.params.get("choices", DEFAULT_CHOICES))
        timeout_at = None
        if node.node.timeout_ms is not None:
            due = self.at + node.node.timeout_ms
            self.timers[_timeout_timer(node.id, attempt)] = due
            timeout_at = iso_time(due)
        self.nodes[node.id] = NodeRun(
            node.id,
            WAITING,
            attempt,
            {"message": message, "choices": choices},
            started_at=self.at,
            errors=self._earlier_errors(node.id),
        )
        self.emit_event(
            "node.started",
            node_id=node.id,
            attempt=attempt,
            data={
                "kind": "approval",
                "message": message,
                "choices": choices,
                "department": self.workflow.definition.department,
                "timeout_at": timeout_at,
            },
        )

    def _call(self, node: CompiledNode, attempt: int, given: Any) -> None:
        """Start a child execution; wait for it unless `wait: false`."""
        if given is None:
            try:
                given = self.render(node, "input", {})
            except ExpressionError as exc:
                self._failed_to_start(node, attempt, exc)
                return
        s = self.state
        params = node.node.params
        child = child_execution_id(s.execution_id, node.id, attempt)
        context = self._parent_view() if params.get("inherit_context", True) else None
        link = self._link(node, context)
        self.emit_event(
            "node.started",
            node_id=node.id,
            attempt=attempt,
            data={"workflow": params["workflow"], "execution_id": child, "input": given},
        )
        # Version 0: the latest deployed when the child starts, which only the runtime knows.
        self.outgoing.append(
            StartExecution(
                f"{child}/start", child, self.at, params["workflow"], 0, given, None, link
            )
        )
        errors = self._earlier_errors(node.id)
        if not params.get("wait", True):
            output = {"execution_id": child}
            self.nodes[node.id] = NodeRun(
                node.id, COMPLETED, attempt, given, output, None, self.at, self.at, errors
            )
            self.emit_event("node.completed", node_id=node.id, attempt=attempt, data=output)
            self._continue(node, _normal_edges(node))
            return
        self.nodes[node.id] = NodeRun(
            node.id, WAITING, attempt, given, started_at=self.at, errors=errors
        )
        self.children[node.id] = child
        if node.node.timeout_ms is not None:
            self.timers[_timeout_timer(node.id, attempt)] = self.at + node.node.timeout_ms

    def _link(
        self, node: CompiledNode, context: Mapping[str, Any] | None, item: int | None = None
    ) -> ParentLink:
        """How a child execution that `node` starts points back to this execution."""
        s = self.state
        depth = (s.parent.depth if s.parent is not None else 0) + 1
        return ParentLink(s.execution_id, s.workflow_id, node.id, depth, context, item)

    def _cancel_child(self, child: str, reason: str) -> None:
        s = self.state
        self.outgoing.append(
            CancelExecution(f"{child}/cancel", child, self.at, reason, s.execution_id)
        )

    # -- foreach: items dispatched in order, at most `concurrency` at a time

    def _fan_out(self, node: CompiledNode, attempt: int, given: Any) -> None:
        """Start attempt `attempt` of a foreach node over `given` (None: render its items)."""
        items = given
        if items is None:
            try:
                items = self.render(node, "items")
            except ExpressionError as exc:
                self._failed_to_start(node, attempt, exc)
                return
        if not isinstance(items, list):
            # The type, not the value: a big object would swamp the error and the records.
            problem = ExpressionError(f"params.items gave {_json_kind(items)}, not a list")
            self._failed_to_start(node, attempt, problem)
            return
        params = node.node.params
        self.emit_event(
            "node.started",
            node_id=node.id,
            attempt=attempt,
            data={
                "items": len(items),
                "concurrency": params.get("concurrency", DEFAULT_CONCURRENCY),
            },
        )
        previous = self.nodes.get(node.id)
        run = NodeRun(
            node.id,
            RUNNING,
            attempt,
            items,
            None,
            previous.error if previous is not None else None,
            self.at,
            None,
            previous.errors if previous is not None else (),
        )
        self.nodes[node.id] = run
        if not items:
            output = foreach_output((), (), params.get("continue_on_error", False))
            self._complete(node, run, output, _normal_edges(node))
            return
        if node.node.timeout_ms is not None:
            self.timers[_timeout_timer(node.id, attempt)] = self.at + node.node.timeout_ms
        self.foreach[node.id] = ForeachProgress(node.id, attempt, len(items))
        self._advance(node)

    def _advance(self, node: CompiledNode) -> None:
        """Flush the chunks whose items are all in, and dispatch items while there is room.

        Once every item is in, the runtime is asked for the results. While the
        execution fails no new item starts, as no new node does: once its
        running items have drained, the foreach is cancelled.
        """
        run = self.nodes[node.id]
        concurrency = node.node.params.get("concurrency", DEFAULT_CONCURRENCY)
        while (progress := self.foreach.get(node.id)) is not None:
            progress, chunks = flush(progress, self.state.execution_id)
            self.outgoing.extend(chunks)
            self.foreach[node.id] = progress
            if collected(progress):
                self._collect(progress)
                return
            if self.error is not None:
                if not progress.running:
                    self._drop_items(node.id)
                    self.timers.pop(_timeout_timer(node.id, run.attempt), None)
                    self.nodes[node.id] = replace(run, status=CANCELLED, completed_at=self.at)
                    self._fail_when_drained()
                return
            if not may_dispatch(progress, concurrency):
                return
            index = progress.next
            self.foreach[node.id] = dispatched(progress)
            failure = self._send_item(node, run, index)
            if failure is not None:
                self._settle(node, index, None, failure)

    def _send_item(self, node: CompiledNode, run: NodeRun, index: int) -> NodeError | None:
        """Send item `index` of the attempt to an executor, or start its child execution.

        A template that fails to render for this item fails the item (the error is
        returned), like an item whose work failed.
        """
        item = run.input[index]
        scope = self.scope((index, item))
        inline = node.item_node
        try:
            if inline is not None:
                given = self._request_input(inline, scope)
            else:
                given = self.render(node, "input", item, scope)
        except ExpressionError as exc:
            return NodeError("ExpressionError", str(exc), node.id)
        s = self.state
        if inline is not None:
            key = f"{s.execution_id}:{node.id}:{run.attempt}:{index}"
            self.outgoing.append(self._task_request(inline, run.attempt, key, given, index))
            return None
        child = f"{child_execution_id(s.execution_id, node.id, run.attempt)}[{index}]"
        link = self._link(node, self._parent_view(), index)
        workflow_id = node.node.params["do"]
        # Version 0: the latest deployed when the child starts, which only the runtime knows.
        self.outgoing.append(
            StartExecution(f"{child}/start", child, self.at, workflow_id, 0, given, None, link)
        )
        self.children[item_key(node.id, index)] = child
        return None

    def _item_finished(
        self, node_id: str, attempt: int, index: int, output: Any, error: NodeError | None
    ) -> str | None:
        progress = self.foreach.get(node_id)
        if progress is None or progress.attempt != attempt or index not in progress.running:
            return f"item {index} of node {node_id!r} attempt {attempt} is not running"
        node = self.workflow.nodes[node_id]
        self._settle(node, index, output, error)
        self._advance(node)
        return None

    def _settle(self, node: CompiledNode, index: int, output: Any, error: NodeError | None) -> None:
        """Record an item's result; a failure fails the attempt unless `continue_on_error`."""
        if error is not None and not node.node.params.get("continue_on_error", False):
            run = self.nodes[node.id]
            self._stop_items(node.id, f"item {index} of node {node.id!r} failed")
            failure = NodeError(error.type, f"item {index}: {error.message}", node.id)
            self._attempt_failed(node, run, failure)
            return
        failure = None if error is None else ItemError(index, error.type, error.message)
        self.foreach[node.id] = settled(self.foreach[node.id], index, output, failure)

    def _collect(self, progress: ForeachProgress) -> None:
        s = self.state
        self.outgoing.append(
            CollectItems(
                f"{s.execution_id}/{progress.node_id}/{progress.attempt}/collect",
                s.execution_id,
                self.at,
                progress.node_id,
                progress.attempt,
                progress.total,
                progress.chunks,
            )
        )

    def _stop_items(self, node_id: str, reason: str) -> None:
        """A foreach attempt ends early: its items' children are cancelled, its results dropped."""
        progress = self._drop_items(node_id)
        for index in progress.running:
            child = self.children.pop(item_key(node_id, index), None)
            if child is not None:
                self._cancel_child(child, reason)

    def _drop_items(self, node_id: str) -> ForeachProgress:
        """Forget a foreach attempt's progress; the runtime may drop the chunks it flushed."""
        progress = self.foreach.pop(node_id)
        if progress.chunks:
            self.outgoing.append(
                DropItems(self.state.execution_id, node_id, progress.attempt, progress.chunks)
            )
        return progress

    # -- waits ending, attempts failing

    def _complete(self, node: CompiledNode, run: NodeRun, output: Any, taken: set[int]) -> None:
        """A waiting node is done: record its output and go on along `taken`."""
        self._clear_timers(node.id)
        self.nodes[node.id] = replace(
            run, status=COMPLETED, output=output, error=None, completed_at=self.at
        )
        self.emit_event("node.completed", node_id=node.id, attempt=run.attempt, data=output)
        self._continue(node, taken)

    def _clear_timers(self, node_id: str) -> None:
        prefix = f"{node_id}/"
        for timer_id in [t for t in self.timers if t.startswith(prefix)]:
            if timer_id != EXECUTION_TIMER:
                del self.timers[timer_id]

    def _timed_out(self, node: CompiledNode, run: NodeRun) -> None:
        timeout_ms = node.node.timeout_ms
        if node.type in ATTEMPT_TYPES:
            if run.status == RUNNING:
                if node.type == "foreach":
                    reason = f"node {node.id!r} of {self.state.execution_id} timed out"
                    self._stop_items(node.id, reason)
                message = f"attempt {run.attempt} did not finish within {timeout_ms} ms"
                self._attempt_failed(node, run, NodeError("Timeout", message, node.id))
            return
        if run.status != WAITING:
            return
        params = node.node.params
        if node.type == "subworkflow":
            child = self.children.pop(node.id, None)
            if child is not None:
                self._cancel_child(
                    child, f"node {node.id!r} of {self.state.execution_id} timed out"
                )
            message = f"child execution {child} did not finish within {timeout_ms} ms"
        elif node.type == "approval":
            on_timeout = params.get("on_timeout", "fail")
            if on_timeout != "fail":
                output = {
                    "choice": on_timeout,
                    "by": "timeout",
                    "comment": None,
                    "data": None,
                    "decided_at": iso_time(self.at),
                    "decision_id": None,
                }
                self._complete(node, run, output, _normal_edges(node))
                return
            message = f"no decision within {timeout_ms} ms"
        else:
            message = f"no {params.get('type')!r} event arrived within {timeout_ms} ms"
        timeout_edges = {e.index for e in node.outgoing if e.timeout}
        if timeout_edges:
            self._complete(node, run, {"timed_out": True}, timeout_edges)
        else:
            self._fail_node(node, run.attempt, NodeError("Timeout", message, node.id), run)

    def _attempt_failed(self, node: CompiledNode, run: NodeRun, error: NodeError) -> None:
        """An attempt of a work or foreach node failed: back off and try again, or fail for good."""
        self.timers.pop(_timeout_timer(node.id, run.attempt), None)
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
                run, status=WAITING, error=error, errors=(*run.errors, error)
            )
            self.timers[f"{node.id}/{run.attempt}/retry"] = due
            self.emit_event(
                "node.retrying",
                node_id=node.id,
                attempt=run.attempt,
                data={"next_attempt": run.attempt + 1, "retry_at": iso_time(due)},
                error=error,
            )
        else:
            self._fail_node(node, run.attempt, error, run)

    def _retry(self, node: CompiledNode, run: NodeRun) -> None:
        if self.error is not None:
            # The execution is failing: no new attempt starts, as no new node does.
            self.nodes[node.id] = replace(run, status=CANCELLED, completed_at=self.at)
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
        self._fail_node(node, 1, NodeError("Timeout", message, node_id), None)

    def _fail_node(
        self,
        node: CompiledNode,
        attempt: int,
        error: NodeError,
        run: NodeRun | None,
    ) -> None:
        """`node` failed for good: along its on_error edge, else the execution fails or parks.

        A failure its on_error edge handles does not stop the execution and needs
        no redrive. Any other is dead-lettered, whatever the node's type and retry
        settings: whoever finds the execution failed or parked can redrive it from
        that node. The letter is this step's outgoing message, so a redelivered
        transition (ignored: the node is no longer running) writes no second one.
        """
        self._clear_timers(node.id)
        base = run or NodeRun(
            node.id, RUNNING, attempt, started_at=self.at, errors=self._earlier_errors(node.id)
        )
        failed = replace(
            base,
            status=FAILED,
            attempt=attempt,
            error=error,
            errors=(*base.errors, error),
            completed_at=self.at,
        )
        self.nodes[node.id] = failed
        self.emit_event("node.failed", node_id=node.id, attempt=attempt, error=error)
        handler = _on_error_edge(node)
        if handler is not None:
            self._continue(node, {handler.index})
            return
        self._dead_letter(failed)
        if self.error is None:
            self.error = error
        if node.id in self.workflow.fail_fast:
            self.finish(self._stopped_status(), error=self.error)
        else:
            self._fail_when_drained()

    def _dead_letter(self, run: NodeRun) -> None:
        s = self.state
        letter_id = f"{s.execution_id}/{run.node_id}/{run.attempt}/dead-letter"
        context = {
            **self._parent_view(),
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
            )
        )
        self.emit_event(
            "node.dead_lettered",
            node_id=run.node_id,
            attempt=run.attempt,
            data={"dead_letter_id": letter_id},
            error=run.error,
        )

    def _stopped_status(self) -> str:
        """How a node failing for good ends the execution: failed, or parked for a redrive."""
        return PARKED if self.workflow.definition.on_failure == "park" else FAILED

    def _fail_when_drained(self) -> None:
        if not any(r.status == RUNNING for r in self.nodes.values()):
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
            if run.status == CANCELLED or (run.status == FAILED and _on_error_edge(node) is None):
                self._run(node, run.attempt + 1, run.input)
            elif not self._passed_on(node):
                taken = self._taken_by(node, run)
                if taken is not None:
                    self._propagate(node, taken)
        for node in self.workflow.nodes.values():
            if self._stopping():
                return
            if node.id not in self.nodes and self._ready(node):
                self.start_node(node)

    def _stopping(self) -> bool:
        """Whether the execution has ended again or is failing: then nothing more starts."""
        return self.error is not None or self.status != RUNNING

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
        if run.status == COMPLETED:
            timeout_edges = {e.index for e in node.outgoing if e.timeout}
            if timeout_edges and run.output == {"timed_out": True}:
                return timeout_edges
            return _normal_edges(node)
        handler = _on_error_edge(node) if run.status == FAILED else None
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
        return source.status == COMPLETED or (edge.on_error and source.status == FAILED)

    def _continue(self, node: CompiledNode, taken: set[int]) -> None:
        """After a node ends: on along `taken`, unless the execution is failing and drains."""
        if self.error is not None:
            self._fail_when_drained()
        else:
            self._propagate(node, taken)

    def _correlation_context(self, node: CompiledNode) -> dict[str, Any]:
        """The values `correlate` reads besides `event`, as plain JSON."""
        if node.correlate is None:
            return {}
        scope = self.scope()
        context: dict[str, Any] = {}
        for name in node.correlate.names - {"event"}:
            if name == "nodes":
                context["nodes"] = {
                    n: {"output": self._output_of(n), "status": self.nodes[n].status}
                    for n in node.correlate.nodes
                    if n in self.nodes
                }
            else:
                # `get`: a name with no value yet (`dept`) reads as null, as in templates.
                context[name] = scope.get(name)
        return context

    def _publish(self, node: CompiledNode) -> dict[str, Any]:
        event_type = self.render(node, "type")
        if not isinstance(event_type, str) or not event_type:
            raise ExpressionError(f"params.type gave {event_type!r}, not an event type")
        problem = topic_segment_problem(event_type)
        if problem is not None:
            raise ExpressionError(f"params.type gave {problem}")
        subject = self.render(node, "subject")
        if subject is not None and not isinstance(subject, str):
            raise ExpressionError(f"params.subject gave {subject!r}, not a string")
        s = self.state
        event_id = f"{s.execution_id}/{node.id}"
        self.outgoing.append(
            PublishEvent(
                event_id,
                s.execution_id,
                s.workflow_id,
                node.id,
                self.at,
                event_type,
                self.render(node, "data"),
                subject,
            )
        )
        return {"id": event_id, "type": event_type}

    def _decide(self, node: CompiledNode) -> tuple[Any, set[int]]:
        """A control node's output and the indexes of the outgoing edges it takes."""
        every = {e.index for e in node.outgoing}
        if node.type == "decision":
            scope = self.scope()
            chosen = next((e for e in node.outgoing if e.when and _holds(e, scope)), None)
            chosen = chosen or next(e for e in node.outgoing if e.default)
            return None, {chosen.index}
        if node.type == "parallel":
            scope = self.scope()
            return None, {e.index for e in node.outgoing if e.when is None or _holds(e, scope)}
        if node.type == "transform":
            return self.render(node, "set", {}), _normal_edges(node)
        if node.type == "join":
            return self._merge(node), every
        if node.type == "end":
            return self.render(node, "output", {}), set()
        if node.type == "publish":
            return self._publish(node), every
        raise AssertionError(f"no control semantics for {node.type!r}")

    def _merge(self, node: CompiledNode) -> Any:
        joined = self.joins.get(node.id, JoinState(node.id))
        arrived = set(joined.taken)
        if node.node.params.get("merge", "object") == "array":
            return [self._output_of(e.source) if e.index in arrived else None for e in node.inbound]
        return {e.source: self._output_of(e.source) for e in node.inbound if e.index in arrived}

    def _output_of(self, node_id: str) -> Any:
        run = self.nodes.get(node_id)
        return run.output if run is not None else None

    def _propagate(self, node: CompiledNode, taken: set[int]) -> None:
        """Send each outgoing edge's target its arrival: taken edges bring a branch, others are dead."""
        pending: list[tuple[CompiledEdge, bool]] = [(e, e.index in taken) for e in node.outgoing]
        while pending:
            edge, alive = pending.pop(0)
            target = self.workflow.nodes[edge.target]
            fires = self._arrive(target, edge, alive)
            if fires is True:
                self.start_node(target)
            elif fires is False:
                self.nodes[target.id] = NodeRun(target.id, SKIPPED, completed_at=self.at)
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
        wait_for = target.node.params.get("wait_for", "all") if target.type == "join" else "all"
        need = {"all": total, "any": 1}.get(wait_for, wait_for)
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
            if run.status in (RUNNING, WAITING):
                self.nodes[node_id] = replace(run, status=CANCELLED, completed_at=self.at)
        for node_id in list(self.foreach):
            self._drop_items(node_id)
        data = output if status == COMPLETED else None
        self.emit_event(f"workflow.{status}", data=data, error=error)
        s = self.state
        for child in self.children.values():
            self._cancel_child(child, f"parent execution {s.execution_id} {status}")
        self.children = {}
        parent = s.parent
        if parent is not None and status in TERMINAL:
            # Sent whether or not the parent waits: only the parent's state knows.
            self.outgoing.append(
                ChildFinished(
                    f"{s.execution_id}/finished{self._generation()}",
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


_APPLY: dict[type, Callable[[_Draft, Any], str | None]] = {
    RunNode: _Draft.run_node,
    NodeCompleted: _Draft.node_completed,
    NodeFailed: _Draft.node_failed,
    CancelExecution: _Draft.cancel,
    EventArrived: _Draft.event_arrived,
    TimerFired: _Draft.timer_fired,
    ApprovalDecided: _Draft.approval_decided,
    ChildFinished: _Draft.child_finished,
    PauseExecution: _Draft.pause,
    ResumeExecution: _Draft.resume,
    RedriveNode: _Draft.redrive,
    ItemsCollected: _Draft.items_collected,
}
