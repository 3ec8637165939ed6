"""Properties of the engine under at-least-once delivery, in any order, with faults.

A simulated Kafka holds a pool of pending records. Hypothesis picks which one
is delivered next (every order causality allows) and injects two faults:

- duplicate delivery: a record is delivered, then put back to be delivered again;
- crash before commit: a record is applied and its outputs are sent, but the new
  state is thrown away and the record stays pending (a worker died between
  producing and committing), so it is applied again later, maybe after its own
  outputs have been delivered.

Task requests are answered by simulated executors with a fixed output per node.
The final state must match an in-order, fault-free run (`dry_run`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from series_parallel_workflows import inputs, task_output, workflow_documents

from braidflow.engine import (
    ExecutionState,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    NodeRun,
    Outgoing,
    RunNode,
    StartExecution,
    StepResult,
    TaskRequest,
    Transition,
    step,
)
from braidflow.engine.dry_run import Answer, dry_run
from braidflow.topology import DefinitionError, Workflow, compile_workflow
from braidflow.topology.kinds import WORK_TYPES

PROPERTIES = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXAMPLES = settings(PROPERTIES, max_examples=40)
EXECUTION = "ex"
MAX_DELIVERIES = 5_000
MAX_FAULTS = 40
BOOM = NodeError("RuntimeError", "boom")


# -- the simulated Kafka and executors


@dataclass(frozen=True, slots=True)
class Commit:
    """A transition applied and committed: the state before it and the result."""

    transition: Transition
    before: ExecutionState | None
    result: StepResult


@dataclass
class Trace:
    """Everything one scrambled run did."""

    state: ExecutionState | None = None
    commits: list[Commit] = field(default_factory=list)
    emitted: list[Outgoing] = field(default_factory=list)
    deliveries: int = 0
    faults: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> list[TaskRequest]:
        """Every task request ever sent, also by steps whose state was thrown away."""
        return [m for m in self.emitted if isinstance(m, TaskRequest)]

    @property
    def applied(self) -> list[Commit]:
        """Committed transitions that changed something."""
        return [c for c in self.commits if c.result.ignored is None]

    def committed_events(self, type_: str, node_id: str) -> list[LifecycleEvent]:
        return [
            o
            for c in self.commits
            for o in c.result.outgoing
            if isinstance(o, LifecycleEvent) and o.type == type_ and o.node_id == node_id
        ]


Executor = Callable[[TaskRequest, int], Transition]


def completes(request: TaskRequest, at: int) -> Transition:
    """An executor whose every task succeeds with `task_output(node)`."""
    key = request.idempotency_key
    return NodeCompleted(
        f"{key}/completed",
        request.execution_id,
        at,
        request.node_id,
        request.attempt,
        task_output(request.node_id),
    )


def fails_at(*failing: str) -> Executor:
    """An executor where the nodes in `failing` raise and every other task succeeds."""

    def execute(request: TaskRequest, at: int) -> Transition:
        if request.node_id not in failing:
            return completes(request, at)
        key = request.idempotency_key
        return NodeFailed(
            f"{key}/failed", request.execution_id, at, request.node_id, request.attempt, BOOM
        )

    return execute


def scrambled_run(
    wf: Workflow, input_: Any, data: st.DataObject, execute: Executor = completes
) -> Trace:
    """Deliver every record in a drawn order with drawn faults until nothing is pending.

    After each commit that changed the state, one earlier such transition (drawn)
    is applied again to the new state: it must change nothing and send nothing.
    """
    trace = Trace()
    pool: list[Transition | TaskRequest] = [StartExecution("start", EXECUTION, 0, wf.id, 1, input_)]
    clock = 0
    while pool:
        trace.deliveries += 1
        assert trace.deliveries <= MAX_DELIVERIES, "the execution did not settle"
        message = pool.pop(data.draw(st.integers(0, len(pool) - 1)))
        fault = "none"
        if sum(trace.faults.values()) < MAX_FAULTS:
            fault = data.draw(st.sampled_from(["none", "none", "none", "duplicate", "crash"]))
        if fault != "none":
            trace.faults[fault] += 1
        if isinstance(message, TaskRequest):
            # An executor that dies before committing its offset runs the task again.
            clock += 1
            pool.append(execute(message, clock))
            if fault != "none":
                pool.append(message)
            continue
        result = step(wf, trace.state, message)
        trace.emitted.extend(result.outgoing)
        pool.extend(o for o in result.outgoing if not isinstance(o, LifecycleEvent))
        if fault == "crash":
            pool.append(message)
            continue
        trace.commits.append(Commit(message, trace.state, result))
        trace.state = result.state
        if fault == "duplicate":
            pool.append(message)
        if result.ignored is None and len(trace.applied) > 1:
            earlier = trace.applied[data.draw(st.integers(0, len(trace.applied) - 2))]
            assert_no_op(wf, trace.state, earlier.transition)
    return trace


def assert_no_op(wf: Workflow, state: ExecutionState | None, transition: Transition) -> None:
    again = step(wf, state, transition)
    assert again.state == state, f"re-applying {transition} changed the state"
    assert again.outgoing == (), f"re-applying {transition} sent {again.outgoing}"


# -- the reference run and comparisons


def canonical_run(wf: Workflow, input_: Any) -> ExecutionState:
    """In order, one at a time, no faults: what `braidflow dry-run` shows."""
    answers = {
        n: Answer(output=task_output(n)) for n, c in wf.nodes.items() if c.type in WORK_TYPES
    }
    state = None
    for _, result in dry_run(wf, input_, answers, execution_id=EXECUTION):
        state = result.state
    assert state is not None
    return state


def run_view(run: NodeRun) -> tuple[Any, ...]:
    """A node run without its timestamps, which come from delivery times."""
    return (run.status, run.attempt, run.input, run.output, run.error)


def work_nodes(wf: Workflow) -> set[str]:
    return {n for n, c in wf.nodes.items() if c.type in WORK_TYPES}


def join_nodes(wf: Workflow) -> set[str]:
    return {n for n, c in wf.nodes.items() if c.type == "join"}


def descendants(wf: Workflow, node_id: str) -> set[str]:
    return wf.graph.reachable([node_id]) - {node_id}


def compiled(doc: dict[str, Any]) -> Workflow:
    try:
        return compile_workflow(doc)
    except DefinitionError as exc:  # a generator bug, or topology rejecting a valid graph
        pytest.fail(f"generated document does not compile: {exc.problems}\n{doc}")


# -- properties of generated workflows


@PROPERTIES
@given(doc=workflow_documents())
def test_generated_documents_are_valid_definitions(doc: dict[str, Any]) -> None:
    wf = compiled(doc)
    assert wf.root != "finish" and wf.nodes["finish"].type == "end"


@PROPERTIES
@given(doc=workflow_documents(), input_=inputs(), data=st.data())
def test_any_delivery_order_with_duplicates_and_crashes_ends_like_the_in_order_run(
    doc: dict[str, Any], input_: dict[str, Any], data: st.DataObject
) -> None:
    wf = compiled(doc)
    trace = scrambled_run(wf, input_, data)
    state, reference = trace.state, canonical_run(wf, input_)
    event(f"nodes: {len(wf.nodes) // 10 * 10}+")
    event(f"skipped: {sum(r.status == 'skipped' for r in reference.nodes.values()) > 0}")
    for fault, count in sorted(trace.faults.items()):
        event(f"{fault}: {'none' if not count else '1-4' if count < 5 else '5+'}")
    assert reference.status == "completed", reference.error

    # 1. Every execution ends, and nothing is left running or cancelled.
    assert state is not None and state.status == "completed", state and state.error
    assert set(state.nodes) == set(wf.nodes), "every node ran or was skipped"
    assert {r.status for r in state.nodes.values()} <= {"completed", "skipped"}

    # 2. A work node is requested once (one idempotency key) iff it is on the taken path.
    keys: dict[str, set[str]] = defaultdict(set)
    for request in trace.requests:
        keys[request.node_id].add(request.idempotency_key)
    assert all(len(k) == 1 for k in keys.values()), keys
    ran = {n for n in work_nodes(wf) if state.nodes[n].status != "skipped"}
    assert set(keys) == ran

    # 3. A join that is not skipped fires exactly once, in the step whose arrival fires it
    # (no RunNode of its own); a skipped one never runs (no node.started, below).
    for join in join_nodes(wf):
        assert not any(isinstance(m, RunNode) and m.node_id == join for m in trace.emitted)
        if state.nodes[join].status == "skipped":
            assert not trace.committed_events("node.completed", join)
            continue
        assert len(trace.committed_events("node.completed", join)) == 1
        assert state.nodes[join].status == "completed" and state.joins[join].fired

    # Every node that ran started exactly once, as recorded by committed steps.
    for node_id, run in state.nodes.items():
        started = trace.committed_events("node.started", node_id)
        assert len(started) == (0 if run.status == "skipped" else 1), node_id

    # 4. Neither duplicates nor the order change the result.
    assert (state.status, state.output, state.error) == (
        reference.status,
        reference.output,
        reference.error,
    )
    assert {n: run_view(r) for n, r in state.nodes.items()} == {
        n: run_view(r) for n, r in reference.nodes.items()
    }

    # 5. Re-applying any applied transition to the final state is a no-op.
    for commit in trace.applied:
        assert_no_op(wf, state, commit.transition)


@PROPERTIES
@given(doc=workflow_documents(), input_=inputs(), data=st.data())
def test_a_failing_task_on_the_taken_path_fails_the_execution_in_any_order(
    doc: dict[str, Any], input_: dict[str, Any], data: st.DataObject
) -> None:
    wf = compiled(doc)
    reference = canonical_run(wf, input_)
    taken = sorted(n for n in work_nodes(wf) if reference.nodes[n].status == "completed")
    if not taken:
        return
    failing = data.draw(st.sampled_from(taken), label="failing")
    trace = scrambled_run(wf, input_, data, fails_at(failing))
    state = trace.state
    assert state is not None and state.status == "failed"
    assert state.error == NodeError(BOOM.type, BOOM.message, failing)
    assert state.nodes[failing].status == "failed"
    assert not descendants(wf, failing) & set(state.nodes), "nothing after the failure runs"
    (failure,) = [c for c in trace.applied if isinstance(c.transition, NodeFailed)]
    assert_failure_semantics(trace, failure, fail_fast=failing in wf.fail_fast)


def assert_failure_semantics(trace: Trace, failure: Commit, *, fail_fast: bool) -> None:
    """At once with fail_fast; otherwise work in flight drains, nothing new starts, then fail."""
    before, after = failure.before, failure.result.state
    assert before is not None and after is not None and after.error is not None
    assert isinstance(failure.transition, NodeFailed)
    failing = failure.transition.node_id
    in_flight = {n for n, r in before.nodes.items() if r.status == "running"} - {failing}
    event(f"fail_fast: {fail_fast}, in flight: {bool(in_flight)}")
    later = trace.commits[trace.commits.index(failure) + 1 :]
    if fail_fast or not in_flight:
        assert after.status == "failed"
        assert {after.nodes[n].status for n in in_flight} <= {"cancelled"}
        assert all(c.result.ignored is not None for c in later), "nothing changes once failed"
        return
    assert after.status == "running", "siblings in flight may still finish"
    assert {after.nodes[n].status for n in in_flight} == {"running"}
    started_later = {
        o.node_id
        for c in later
        for o in c.result.outgoing
        if isinstance(o, LifecycleEvent) and o.type == "node.started"
    }
    assert not started_later, f"{started_later} started after the failure"
    assert trace.state is not None and trace.state.status == "failed"
    assert {trace.state.nodes[n].status for n in in_flight} == {"completed"}
    finished = next(c for c in later if c.result.state and c.result.state.status == "failed")
    assert finished.before is not None
    draining = {n for n, r in finished.before.nodes.items() if r.status == "running"}
    assert len(draining) == 1, "the execution fails when the last node in flight finishes"


# -- failure semantics on fixed workflows, in any order


def workflow(text: str) -> Workflow:
    return compile_workflow(yaml.safe_load(text))


CHAIN = workflow(
    """
id: chain
nodes:
  - {id: first, type: task, params: {handler: h}}
  - {id: second, type: task, params: {handler: h, input: {prev: "${nodes.first.output}"}}}
  - {id: third, type: task, params: {handler: h}}
  - {id: done, type: end, params: {output: {ok: true}}}
edges:
  - {from: first, to: second}
  - {from: second, to: third}
  - {from: third, to: done}
"""
)

SHAPED = workflow(
    """
id: shaped
nodes:
  - {id: first, type: task, params: {handler: h}}
  - {id: shape, type: transform, params: {set: {prev: "${nodes.first.output}"}}}
  - {id: done, type: end, params: {output: {ok: true}}}
edges:
  - {from: first, to: shape}
  - {from: shape, to: done}
"""
)

FAN = """
id: fan
nodes:
  - {id: split, type: parallel, params: {fail_fast: FAIL_FAST}}
  - {id: a, type: task, params: {handler: h}}
  - {id: b, type: task, params: {handler: h}}
  - {id: b2, type: task, params: {handler: h}}
  - {id: c, type: task, params: {handler: h}}
  - {id: gather, type: join, params: {wait_for: all}}
  - {id: after, type: task, params: {handler: h}}
  - {id: done, type: end, params: {output: {all: "${nodes.gather.output}"}}}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: split, to: c}
  - {from: b, to: b2}
  - {from: a, to: gather}
  - {from: b2, to: gather}
  - {from: c, to: gather}
  - {from: gather, to: after}
  - {from: after, to: done}
"""
FAIL_FAST = workflow(FAN.replace("FAIL_FAST", "true"))
DRAINING = workflow(FAN.replace("FAIL_FAST", "false"))


def requested(trace: Trace) -> set[str]:
    return {r.node_id for r in trace.requests}


def failures(trace: Trace) -> list[Commit]:
    return [c for c in trace.applied if isinstance(c.transition, NodeFailed)]


@EXAMPLES
@given(data=st.data())
def test_a_failing_task_fails_the_execution_and_nothing_after_it_runs(data: st.DataObject) -> None:
    trace = scrambled_run(CHAIN, None, data, fails_at("second"))
    assert trace.state is not None and trace.state.status == "failed"
    assert trace.state.error == NodeError("RuntimeError", "boom", "second")
    assert trace.state.nodes["second"].input == {"prev": task_output("first")}
    assert requested(trace) == {"first", "second"}
    assert set(trace.state.nodes) == {"first", "second"}
    (failure,) = failures(trace)
    assert failure.result.state is not None and failure.result.state.status == "failed"


@EXAMPLES
@given(data=st.data())
def test_with_fail_fast_a_failing_branch_fails_the_execution_at_once(data: st.DataObject) -> None:
    assert FAIL_FAST.fail_fast == {"a", "b", "b2", "c"}
    trace = scrambled_run(FAIL_FAST, None, data, fails_at("a"))
    state = trace.state
    assert state is not None and state.status == "failed"
    assert state.error == NodeError("RuntimeError", "boom", "a")
    (failure,) = failures(trace)
    assert_failure_semantics(trace, failure, fail_fast=True)
    assert failure.result.state is not None and failure.result.state.status == "failed"
    assert not {"gather", "after", "done"} & set(state.nodes)
    assert "after" not in requested(trace)
    # Siblings still running when `a` failed were cancelled, not left running.
    assert {r.status for r in state.nodes.values()} <= {"completed", "failed", "cancelled"}


@EXAMPLES
@given(data=st.data())
def test_without_fail_fast_siblings_in_flight_finish_before_the_execution_fails(
    data: st.DataObject,
) -> None:
    assert DRAINING.fail_fast == frozenset()
    trace = scrambled_run(DRAINING, None, data, fails_at("a"))
    state = trace.state
    assert state is not None and state.status == "failed"
    assert state.error == NodeError("RuntimeError", "boom", "a")
    (failure,) = failures(trace)
    assert_failure_semantics(trace, failure, fail_fast=False)
    assert not {"gather", "after", "done"} & set(state.nodes)
    assert {r.status for r in state.nodes.values()} <= {"completed", "failed"}


def test_a_run_node_delivered_before_the_step_that_sent_it_is_committed_waits_for_it() -> None:
    """A worker applied `first`'s result, sent RunNode(shape), and died before committing."""
    start = step(SHAPED, None, StartExecution("start", EXECUTION, 0, "shaped", 1, None))
    (request,) = [o for o in start.outgoing if isinstance(o, TaskRequest)]
    result = completes(request, 5)
    lost = step(SHAPED, start.state, result)
    (run_shape,) = [o for o in lost.outgoing if isinstance(o, RunNode)]

    early = step(SHAPED, start.state, run_shape)
    assert early.state == start.state and early.outgoing == ()
    assert early.ignored is not None and "not ready" in early.ignored

    again = step(SHAPED, start.state, result)
    assert run_shape in again.outgoing
    shaped = step(SHAPED, again.state, run_shape)
    assert shaped.state is not None
    assert shaped.state.nodes["shape"].output == {"prev": task_output("first")}
