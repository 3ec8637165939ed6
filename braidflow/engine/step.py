"""The engine: `step(workflow, state, transition) -> StepResult(state, outgoing)`.

Pure and deterministic. Redelivery is harmless by construction: every
transition first checks that the state is the one it expects (a node not yet
run, a run still waiting for that attempt, an execution not yet finished) and
otherwise changes nothing and emits nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from braidflow.engine.messages import (
    AwaitEvent,
    CancelExecution,
    EventArrived,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    PublishEvent,
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
    RUNNING,
    SKIPPED,
    WAITING,
    ExecutionState,
    JoinState,
    NodeRun,
    iso_time,
)
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.model import WORK_TYPES
from braidflow.topology.workflow import CompiledEdge, CompiledNode, Workflow


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


def step(workflow: Workflow, state: ExecutionState | None, transition: Transition) -> StepResult:
    """Apply one transition to one execution."""
    if isinstance(transition, StartExecution):
        if state is not None:
            return StepResult(state, ignored="execution already started")
        return _start(workflow, transition)
    if state is None:
        return StepResult(None, ignored="unknown execution")
    if state.finished:
        return StepResult(state, ignored=f"execution already {state.status}")
    draft = _Draft(workflow, state, transition.at)
    if isinstance(transition, RunNode):
        reason = draft.run_node(transition.node_id)
    elif isinstance(transition, NodeCompleted):
        reason = draft.node_completed(transition)
    elif isinstance(transition, NodeFailed):
        reason = draft.node_failed(transition)
    elif isinstance(transition, CancelExecution):
        reason = draft.cancel(transition.reason)
    elif isinstance(transition, EventArrived):
        reason = draft.event_arrived(transition)
    elif isinstance(transition, TimerFired):
        reason = draft.timer_fired(transition)
    else:
        reason = f"unsupported transition {type(transition).__name__}"
    if reason is not None:
        return StepResult(state, ignored=reason)
    return StepResult(draft.build(), tuple(draft.outgoing))


def _start(workflow: Workflow, t: StartExecution) -> StepResult:
    state = ExecutionState(
        execution_id=t.execution_id,
        workflow_id=t.workflow_id,
        workflow_version=t.workflow_version,
        status=RUNNING,
        started_at=t.at,
        updated_at=t.at,
        input=t.input,
        event=t.event,
    )
    draft = _Draft(workflow, state, t.at)
    problems = input_problems(workflow, t.input)
    if problems:
        draft.finish(FAILED, error=NodeError("InputInvalid", "; ".join(problems)))
    else:
        draft.emit_event("workflow.started", data={"input": t.input, "event": _trigger(t.event)})
        draft.start_node(workflow.nodes[workflow.root])
    return StepResult(draft.build(), tuple(draft.outgoing))


def _trigger(event: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What `workflow.started` says of the event that started the execution."""
    if event is None:
        return None
    return {k: event.get(k) for k in ("id", "type", "source", "subject")}


def _timeout_timer(node_id: str, attempt: int) -> str:
    return f"{node_id}/{attempt}/timeout"


def _holds(edge: CompiledEdge, scope: Mapping[str, Any]) -> bool:
    assert edge.when is not None
    value = edge.when.evaluate(scope)
    if not isinstance(value, bool):
        raise ExpressionError(f"`{edge.when.source}` gave {value!r}, not a boolean")
    return value


class _Scope(Mapping[str, Any]):
    """The names expressions read, each built only when an expression reads it."""

    def __init__(self, workflow: Workflow, state: ExecutionState, runs: Mapping[str, NodeRun]):
        self._workflow = workflow
        self._state = state
        self._runs = runs

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
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("input", "vars", "nodes", "event", "execution"))

    def __len__(self) -> int:
        return 5


class _NodesView(Mapping[str, Any]):
    """`nodes.<id>` in expressions: built lazily, only for the nodes an expression reads."""

    def __init__(self, runs: Mapping[str, NodeRun]) -> None:
        self._runs = runs

    def __getitem__(self, key: str) -> Any:
        run = self._runs[key]
        return {"output": run.output, "status": run.status}

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
            event_id = f"{s.execution_id}/{type_}"
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

    def start_node(self, node: CompiledNode) -> None:
        """A node became ready: dispatch work at once; give a control node its own step.

        Each control step is one record on the transitions topic, so the topic
        is a full audit trail; a work node's move is its task request, and
        skipping a RunNode record for it saves a broker round trip per node.
        """
        if node.type in WORK_TYPES:
            self._dispatch(node)
        else:
            self.send_run(node.id)

    def send_run(self, node_id: str) -> None:
        execution_id = self.state.execution_id
        self.outgoing.append(
            RunNode(f"{execution_id}/{node_id}/run", execution_id, self.at, node_id)
        )

    # -- scope for expressions

    def scope(self) -> Mapping[str, Any]:
        return _Scope(self.workflow, self.state, self.nodes)

    def render(self, node: CompiledNode, param: str, default: Any = None) -> Any:
        template = node.params.get(param)
        if template is None:
            return node.node.params.get(param, default)
        return template.render(self.scope())

    # -- transitions

    def run_node(self, node_id: str) -> str | None:
        node = self.workflow.nodes.get(node_id)
        if node is None:
            return f"unknown node {node_id!r}"
        if node_id in self.nodes:
            return f"node {node_id!r} already {self.nodes[node_id].status}"
        if not self._ready(node):
            return f"node {node_id!r} is not ready: its arrival is not in the state"
        if self.error is not None:
            return "execution is failing; no new node starts"
        if node.type in WORK_TYPES:
            self._dispatch(node)
            return None
        if node.type == "wait_event":
            self._await(node)
            return None
        self.emit_event("node.started", node_id=node_id, attempt=1)
        try:
            output, taken = self._decide(node)
        except ExpressionError as exc:
            self._fail_node(node_id, 1, NodeError("ExpressionError", str(exc), node_id), None)
            return None
        self.nodes[node_id] = NodeRun(node_id, COMPLETED, 1, None, output, None, self.at, self.at)
        self.emit_event("node.completed", node_id=node_id, attempt=1, data=output)
        if node.type == "end":
            self.finish(COMPLETED, output=output)
        else:
            self._propagate(node, taken)
        return None

    def node_completed(self, t: NodeCompleted) -> str | None:
        run = self.nodes.get(t.node_id)
        if run is None or run.status != RUNNING or run.attempt != t.attempt:
            return f"node {t.node_id!r} attempt {t.attempt} is not running"
        self.nodes[t.node_id] = NodeRun(
            t.node_id, COMPLETED, run.attempt, run.input, t.output, None, run.started_at, t.at
        )
        self.emit_event("node.completed", node_id=t.node_id, attempt=t.attempt, data=t.output)
        if self.error is not None:
            self._fail_when_drained()
        else:
            node = self.workflow.nodes[t.node_id]
            self._propagate(node, {e.index for e in node.outgoing})
        return None

    def node_failed(self, t: NodeFailed) -> str | None:
        run = self.nodes.get(t.node_id)
        if run is None or run.status != RUNNING or run.attempt != t.attempt:
            return f"node {t.node_id!r} attempt {t.attempt} is not running"
        error = replace(t.error, node_id=t.node_id)
        self._fail_node(t.node_id, t.attempt, error, run)
        return None

    def cancel(self, reason: str) -> str | None:
        self.finish(CANCELLED, error=NodeError("Cancelled", reason or "cancelled"))
        return None

    def event_arrived(self, t: EventArrived) -> str | None:
        run = self.nodes.get(t.node_id)
        if run is None or run.status != WAITING:
            return f"node {t.node_id!r} is not waiting for an event"
        self.timers.pop(_timeout_timer(t.node_id, run.attempt), None)
        output = dict(t.event)
        self.nodes[t.node_id] = replace(run, status=COMPLETED, output=output, completed_at=t.at)
        self.emit_event("node.completed", node_id=t.node_id, attempt=run.attempt, data=output)
        node = self.workflow.nodes[t.node_id]
        self._continue(node, {e.index for e in node.outgoing if not e.timeout})
        return None

    def timer_fired(self, t: TimerFired) -> str | None:
        if self.timers.pop(t.timer_id, None) is None:
            return f"timer {t.timer_id!r} is not pending"
        node_id, attempt, _ = t.timer_id.rsplit("/", 2)
        run = self.nodes.get(node_id)
        if run is None or run.status != WAITING or str(run.attempt) != attempt:
            return None
        node = self.workflow.nodes[node_id]
        timeout_edges = {e.index for e in node.outgoing if e.timeout}
        if timeout_edges:
            output = {"timed_out": True}
            self.nodes[node_id] = replace(run, status=COMPLETED, output=output, completed_at=t.at)
            self.emit_event("node.completed", node_id=node_id, attempt=run.attempt, data=output)
            self._continue(node, timeout_edges)
        else:
            error = NodeError(
                "Timeout",
                f"no {node.node.params['type']!r} event arrived within {node.node.timeout_ms} ms",
                node_id,
            )
            self._fail_node(node_id, run.attempt, error, run)
        return None

    # -- the pieces

    def _ready(self, node: CompiledNode) -> bool:
        """Whether the state holds the arrival that sends `node` its RunNode.

        A step that sends a RunNode can be lost after sending it (the worker dies
        before committing the state); the RunNode may then be delivered before
        that step's record is applied again, and must not run the node on a state
        without its inputs. The record, applied again, sends the RunNode again.
        Propagation happens in the step that completes a node, so a completed
        source means its edge was taken, unless the target is already skipped.
        """
        if not node.inbound:
            return True
        if len(node.inbound) > 1:
            joined = self.joins.get(node.id)
            return joined is not None and joined.fired
        source = self.nodes.get(node.inbound[0].source)
        return source is not None and source.status == COMPLETED

    def _dispatch(self, node: CompiledNode) -> None:
        try:
            if node.type == "task":
                handler = node.node.params["handler"]
                request_input = self.render(node, "input")
            else:
                handler = None
                request_input = {
                    "method": node.node.params["method"],
                    "url": self.render(node, "url"),
                    "headers": self.render(node, "headers", {}),
                    "query": self.render(node, "query", {}),
                    "body": self.render(node, "body"),
                    "expect_status": node.node.params.get("expect_status"),
                }
        except ExpressionError as exc:
            self.emit_event("node.started", node_id=node.id, attempt=1)
            self._fail_node(node.id, 1, NodeError("ExpressionError", str(exc), node.id), None)
            return
        execution_id = self.state.execution_id
        self.nodes[node.id] = NodeRun(node.id, RUNNING, 1, request_input, started_at=self.at)
        self.emit_event("node.started", node_id=node.id, attempt=1, data=request_input)
        self.outgoing.append(
            TaskRequest(
                execution_id=execution_id,
                workflow_id=self.state.workflow_id,
                node_id=node.id,
                kind=node.type,
                attempt=1,
                idempotency_key=f"{execution_id}:{node.id}:1",
                at=self.at,
                input=request_input,
                handler=handler,
                timeout_ms=node.node.timeout_ms,
            )
        )

    def _continue(self, node: CompiledNode, taken: set[int]) -> None:
        """After a node completes: on along `taken`, unless the execution is failing and drains."""
        if self.error is not None:
            self._fail_when_drained()
        else:
            self._propagate(node, taken)

    def _await(self, node: CompiledNode) -> None:
        """Park at a wait_event node: register the wait and, with a timeout, set its timer."""
        self.emit_event("node.started", node_id=node.id, attempt=1)
        event_type = node.node.params["type"]
        try:
            context = self._correlation_context(node)
        except ExpressionError as exc:
            self._fail_node(node.id, 1, NodeError("ExpressionError", str(exc), node.id), None)
            return
        self.nodes[node.id] = NodeRun(node.id, WAITING, 1, {"type": event_type}, started_at=self.at)
        expires_at = None
        if node.node.timeout_ms is not None:
            expires_at = self.at + node.node.timeout_ms
            self.timers[_timeout_timer(node.id, 1)] = expires_at
        s = self.state
        self.outgoing.append(
            AwaitEvent(
                f"{s.execution_id}/{node.id}/1/await",
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
            return self.render(node, "set", {}), every
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
        return fires

    def _fail_node(self, node_id: str, attempt: int, error: NodeError, run: NodeRun | None) -> None:
        base = run or NodeRun(node_id, RUNNING, attempt, started_at=self.at)
        self.nodes[node_id] = replace(base, status=FAILED, error=error, completed_at=self.at)
        self.emit_event("node.failed", node_id=node_id, attempt=attempt, error=error)
        if self.error is None:
            self.error = error
        if node_id in self.workflow.fail_fast:
            self.finish(FAILED, error=self.error)
        else:
            self._fail_when_drained()

    def _fail_when_drained(self) -> None:
        if not any(r.status == RUNNING for r in self.nodes.values()):
            self.finish(FAILED, error=self.error)

    def finish(self, status: str, *, output: Any = None, error: NodeError | None = None) -> None:
        self.status = status
        self.output = output
        self.error = error
        self.completed_at = self.at
        self.timers = {}
        for node_id, run in list(self.nodes.items()):
            if run.status in (RUNNING, WAITING):
                self.nodes[node_id] = replace(run, status=CANCELLED, completed_at=self.at)
        data = output if status == COMPLETED else None
        self.emit_event(f"workflow.{status}", data=data, error=error)
