"""The engine's behaviour on small workflows, driven with plain data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import yaml

from braidflow.engine import (
    CancelExecution,
    ExecutionState,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    RunNode,
    StartExecution,
    StepResult,
    TaskRequest,
    step,
)
from braidflow.engine.dry_run import Answer, dry_run, parse_answers
from braidflow.engine.messages import ParentLink
from braidflow.engine.state import ControlAction, ForeachProgress, JoinState, LoopProgress, NodeRun
from braidflow.engine.step import Draft
from braidflow.engine.trace_context import execution_trace
from braidflow.topology import Workflow, compile_workflow


def workflow(text: str) -> Workflow:
    return compile_workflow(yaml.safe_load(text))


def run(wf: Workflow, input_: Any, answers: dict[str, Any] | None = None) -> ExecutionState:
    """Deliver everything in emission order; return the final state."""
    state = None
    for _, result in dry_run(wf, input_, parse_answers(answers or {})):
        state = result.state
    assert state is not None
    return state


def events(results: Iterable[StepResult]) -> list[str]:
    return [
        f"{o.type}:{o.node_id}" if o.node_id else o.type
        for r in results
        for o in r.outgoing
        if isinstance(o, LifecycleEvent)
    ]


CHAIN = """
id: chain
input: {type: object, required: [name], properties: {name: {type: string}}}
variables: {greeting: hello}
nodes:
  - {id: fetch, type: task, params: {handler: users.fetch, input: {name: "${input.name}"}}, timeout: 5s}
  - {id: shape, type: transform, params: {set: {user: "${nodes.fetch.output}", line: "${vars.greeting} ${input.name}!"}}}
  - {id: done, type: end, params: {output: {user: "${nodes.shape.output.user}", line: "${nodes.shape.output.line}"}}}
edges:
  - {from: fetch, to: shape}
  - {from: shape, to: done}
"""


def test_a_chain_runs_task_then_transform_then_end() -> None:
    wf = workflow(CHAIN)
    state = run(wf, {"name": "ada"}, {"fetch": {"id": 7, "tags": ["x"]}})
    assert state.status == "completed"
    assert state.output == {"user": {"id": 7, "tags": ["x"]}, "line": "hello ada!"}
    fetch = state.nodes["fetch"]
    assert (fetch.status, fetch.attempt, fetch.input) == ("completed", 1, {"name": "ada"})
    assert fetch.started_at is not None and fetch.completed_at is not None


def test_a_work_node_becomes_a_task_request_with_an_idempotency_key() -> None:
    wf = workflow(CHAIN)
    start = step(wf, None, StartExecution("s", "ex-1", 10, "chain", 3, {"name": "ada"}))
    (request,) = [o for o in start.outgoing if isinstance(o, TaskRequest)]
    assert request.idempotency_key == "ex-1:fetch:1"
    assert (request.kind, request.handler, request.input) == (
        "task",
        "users.fetch",
        {"name": "ada"},
    )
    assert request.timeout_ms == 5000
    assert events([start]) == ["workflow.started", "node.started:fetch"]


def test_a_task_request_carries_each_field_in_its_place() -> None:
    # The engine builds it by position: a field swapped with another fails here.
    wf = workflow("department: support\n" + CHAIN)
    start = step(
        wf, None, StartExecution("s", "ex-1", 10, "chain", 3, {"name": "ada"}, tenant="acme")
    )
    (request,) = [o for o in start.outgoing if isinstance(o, TaskRequest)]
    assert request == TaskRequest(
        execution_id="ex-1",
        workflow_id="chain",
        node_id="fetch",
        kind="task",
        attempt=1,
        idempotency_key="ex-1:fetch:1",
        at=10,
        input={"name": "ada"},
        handler="users.fetch",
        timeout_ms=5000,
        item=None,
        tenant="acme",
        department="support",
        traceparent=execution_trace(start.state).node_header("fetch", 1),
    )


def test_a_control_node_gets_its_own_step_and_a_work_node_is_dispatched_at_once() -> None:
    wf = workflow(CHAIN)
    start = step(wf, None, StartExecution("s", "ex-1", 10, "chain", 3, {"name": "ada"}))
    assert not any(isinstance(o, RunNode) for o in start.outgoing)
    (request,) = [o for o in start.outgoing if isinstance(o, TaskRequest)]
    done = step(wf, start.state, completed(request, {"id": 1}))
    assert [o.node_id for o in done.outgoing if isinstance(o, RunNode)] == ["shape"]


def test_input_that_breaks_the_schema_fails_the_start_naming_the_field() -> None:
    wf = workflow(CHAIN)
    result = step(wf, None, StartExecution("s", "ex-1", 10, "chain", 1, {"name": 5}))
    assert result.state is not None and result.state.status == "failed"
    assert result.state.error is not None
    assert "input.name" in result.state.error.message
    assert events([result]) == ["workflow.failed"]
    assert not any(isinstance(o, (RunNode, TaskRequest)) for o in result.outgoing)


DECISION = """
id: uptime
nodes:
  - {id: check, type: http, params: {method: GET, url: "http://127.0.0.1:1/health"}}
  - {id: healthy, type: decision}
  - {id: alert, type: task, params: {handler: pager.alert}}
  - {id: log, type: task, params: {handler: log.ok}}
  - {id: merged, type: join, params: {wait_for: all, merge: object}}
  - {id: done, type: end, params: {output: {seen: "${nodes.merged.output}"}}}
edges:
  - {from: check, to: healthy}
  - {from: healthy, to: alert, when: "nodes.check.output.status >= 500"}
  - {from: healthy, to: log, default: true}
  - {from: alert, to: merged}
  - {from: log, to: merged}
  - {from: merged, to: done}
"""


def test_a_decision_takes_the_first_true_edge_and_the_join_does_not_wait_for_the_dead_path() -> (
    None
):
    wf = workflow(DECISION)
    state = run(wf, None, {"check": {"status": 503}, "alert": "paged"})
    assert state.status == "completed"
    assert state.nodes["alert"].status == "completed"
    assert state.nodes["log"].status == "skipped"
    assert state.output == {"seen": {"alert": "paged"}}


def test_a_decision_takes_the_default_when_no_condition_holds() -> None:
    wf = workflow(DECISION)
    state = run(wf, None, {"check": {"status": 200}, "log": "logged"})
    assert state.nodes["alert"].status == "skipped"
    assert state.output == {"seen": {"log": "logged"}}


def test_a_condition_that_errors_fails_the_execution_with_the_expression() -> None:
    wf = workflow(DECISION)
    state = run(wf, None, {"check": {"no_status": True}})
    assert state.status == "failed"
    assert state.error is not None and state.error.node_id == "healthy"
    assert "nodes.check.output.status" in state.error.message


FAN = """
id: fan
nodes:
  - {id: split, type: parallel}
  - {id: a, type: task, params: {handler: a}}
  - {id: b, type: task, params: {handler: b}}
  - {id: c, type: task, params: {handler: c}}
  - {id: gather, type: join, params: {wait_for: WAIT, merge: MERGE}}
  - {id: done, type: end, params: {output: {all: "${nodes.gather.output}"}}}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: split, to: c}
  - {from: a, to: gather}
  - {from: b, to: gather}
  - {from: c, to: gather}
  - {from: gather, to: done}
"""


def fan(wait_for: str = "all", merge: str = "object") -> Workflow:
    return workflow(FAN.replace("WAIT", wait_for).replace("MERGE", merge))


def test_a_join_merges_branches_as_an_object_keyed_by_the_last_node() -> None:
    state = run(fan(), None, {"a": 1, "b": 2, "c": 3})
    assert state.output == {"all": {"a": 1, "b": 2, "c": 3}}
    assert state.joins["gather"].fired


def test_a_join_merges_branches_as_an_array_in_edge_order() -> None:
    state = run(fan(merge="array"), None, {"a": 1, "b": 2, "c": 3})
    assert state.output == {"all": [1, 2, 3]}


def drive_until_tasks(wf: Workflow) -> tuple[ExecutionState, list[TaskRequest]]:
    """Start `wf` and apply control steps until only task requests are outstanding."""
    result = step(wf, None, StartExecution("s", "ex", 1, wf.id, 1, None))
    state, pending, tasks = result.state, list(result.outgoing), []
    while pending:
        message = pending.pop(0)
        if isinstance(message, RunNode):
            result = step(wf, state, message)
            state = result.state
            pending.extend(result.outgoing)
        elif isinstance(message, TaskRequest):
            tasks.append(message)
    assert state is not None
    return state, tasks


def completed(request: TaskRequest, output: Any, at: int = 5) -> NodeCompleted:
    key = request.idempotency_key
    return NodeCompleted(f"{key}/done", request.execution_id, at, request.node_id, 1, output)


def test_a_join_waiting_for_any_fires_once_on_the_first_arrival() -> None:
    wf = fan(wait_for="any")
    state, tasks = drive_until_tasks(wf)
    b = next(t for t in tasks if t.node_id == "b")
    first = step(wf, state, completed(b, "B"))
    # The first arrival fires the join in its own step (no RunNode of its own).
    assert not any(isinstance(o, RunNode) for o in first.outgoing)
    assert first.state is not None
    assert first.state.nodes["gather"].output == {"b": "B"}
    later = step(wf, first.state, completed(tasks[0], "A"))
    assert not any(isinstance(o, RunNode) for o in later.outgoing)
    assert later.state is not None
    assert later.state.nodes["gather"].output == {"b": "B"}


def test_applying_the_same_transition_twice_changes_nothing_and_emits_nothing() -> None:
    wf = fan()
    state, tasks = drive_until_tasks(wf)
    once = step(wf, state, completed(tasks[0], "A"))
    twice = step(wf, once.state, completed(tasks[0], "A"))
    assert twice.state == once.state
    assert twice.outgoing == ()
    assert twice.ignored is not None
    start_again = step(wf, once.state, StartExecution("s", "ex", 1, wf.id, 1, None))
    assert start_again.state == once.state and start_again.outgoing == ()


def test_a_failing_task_fails_the_execution_after_in_flight_siblings_finish() -> None:
    wf = fan()
    state, tasks = drive_until_tasks(wf)
    a, b, c = tasks
    error = NodeError("ValueError", "boom")
    failed = step(wf, state, NodeFailed("f", "ex", 5, a.node_id, 1, error))
    assert failed.state is not None and failed.state.status == "running"
    assert failed.state.error is not None
    b_done = step(wf, failed.state, completed(b, "B"))
    c_done = step(wf, b_done.state, completed(c, "C"))
    assert c_done.state is not None and c_done.state.status == "failed"
    assert c_done.state.error == NodeError("ValueError", "boom", "a")
    assert c_done.state.nodes["c"].output == "C"
    assert "gather" not in c_done.state.nodes
    assert events([failed, b_done, c_done]) == [
        "node.failed:a",
        "node.dead_lettered:a",
        "node.completed:b",
        "node.completed:c",
        "workflow.failed",
    ]


def test_with_fail_fast_the_first_failure_fails_the_execution_at_once() -> None:
    wf = workflow(
        FAN.replace("type: parallel}", "type: parallel, params: {fail_fast: true}}")
        .replace("WAIT", "all")
        .replace("MERGE", "object")
    )
    state, tasks = drive_until_tasks(wf)
    failed = step(wf, state, NodeFailed("f", "ex", 5, "b", 1, NodeError("E", "no")))
    assert failed.state is not None and failed.state.status == "failed"
    assert {failed.state.nodes[n].status for n in ("a", "c")} == {"cancelled"}
    late = step(wf, failed.state, completed(tasks[0], "A"))
    assert late.state == failed.state and late.outgoing == ()


def test_cancel_ends_the_execution_and_later_results_are_ignored() -> None:
    wf = fan()
    state, tasks = drive_until_tasks(wf)
    cancelled = step(wf, state, CancelExecution("x", "ex", 9, "operator asked"))
    assert cancelled.state is not None and cancelled.state.status == "cancelled"
    assert events([cancelled]) == ["workflow.cancelled"]
    assert step(wf, cancelled.state, completed(tasks[0], "A")).outgoing == ()


def test_a_result_for_an_unknown_execution_is_ignored_with_a_reason() -> None:
    result = step(fan(), None, NodeCompleted("x", "nope", 1, "a", 1, None))
    assert result.state is None and result.ignored == "unknown execution"


def test_answers_file_entries_can_be_errors() -> None:
    answers = parse_answers(
        {"a": {"error": "down", "type": "Timeout"}, "b": {"output": {"error": 1}}}
    )
    assert answers["a"] == Answer(error=NodeError("Timeout", "down"))
    assert answers["b"] == Answer(output={"error": 1})


def test_a_draft_built_again_keeps_every_field_of_the_execution_but_its_update_time() -> None:
    # Every field set, and each to a value no other field has: a field built into another's
    # place (the constructor is called by position) shows.
    state = ExecutionState(
        "e1",
        "wf",
        3,
        "running",
        10,
        11,
        input={"in": 1},
        event={"id": "ev"},
        output={"out": 1},
        error=NodeError("E", "boom"),
        completed_at=12,
        nodes={"a": NodeRun("a", "completed", 1)},
        joins={"j": JoinState("j", (0,))},
        timers={"t": 13},
        paused=True,
        held=(RunNode("r", "e1", 14, "a"),),
        parent=ParentLink("p1", "pw", "call", 1),
        children={"call": "c1"},
        control=(ControlAction("pause", "ann", 15),),
        foreach={"f": ForeachProgress("f", 1, 3)},
        loops={"l": LoopProgress("l", 2)},
        dept={"region": "eu"},
        tenant="acme",
        admission="acme/ops",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    assert Draft(workflow(CHAIN), state, 99).build() == replace(state, updated_at=99)
