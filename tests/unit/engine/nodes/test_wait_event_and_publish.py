"""The engine on `wait_event` and `publish` nodes: waits, events, timers, and redelivery."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from engine_driver import applied, assert_ignored, events, of_type, settle, workflow
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scrambled_delivery import Trace, scrambled_run

from braidflow.engine import (
    AwaitEvent,
    CancelExecution,
    EventArrived,
    ExecutionState,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    NodeRun,
    Outgoing,
    PublishEvent,
    RunNode,
    StartExecution,
    StepResult,
    TaskRequest,
    TimerFired,
    Transition,
    step,
)
from braidflow.engine.state import iso_time
from braidflow.engine.trace_context import ExecutionTrace
from braidflow.topology import Workflow, compile_workflow

EX = "ex"
T0 = 1_750_000_000_000
HOUR = 3_600_000
INPUT = {"kind": "leave", "who": "ada", "ticket": "T-7"}
EVENT = {
    "id": "ev-1",
    "type": "approval.given",
    "source": "/hr",
    "subject": EX,
    "time": "2025-06-15T12:00:00Z",
    "data": {"who": "ada", "ok": True},
}

APPROVAL = """
id: approval
variables: {topic: approvals}
nodes:
  - id: ask
    type: publish
    params:
      type: "approval.${input.kind}.requested"
      subject: "${execution.id}"
      data: {who: "${input.who}", topic: "${vars.topic}"}
  - id: wait
    type: wait_event
    params:
      type: approval.given
      correlate: "event.subject == execution.id && event.data.who == input.who"
    timeout: 2h
  - {id: approved, type: end, params: {output: {answer: "${nodes.wait.output.data}"}}}
  - {id: too_late, type: end, params: {output: {answer: null}}}
edges:
  - {from: ask, to: wait}
  - {from: wait, to: approved}
  - {from: wait, to: too_late, timeout: true}
"""

# The two ways out of the wait meet again at a join.
CONVERGING = """
id: converging
nodes:
  - {id: wait, type: wait_event, params: {type: approval.given}, timeout: 1h}
  - {id: got_it, type: transform, params: {set: {answer: "${nodes.wait.output.data}"}}}
  - {id: gave_up, type: transform, params: {set: {answer: null}}}
  - {id: either, type: join, params: {wait_for: all}}
  - {id: done, type: end, params: {output: {all: "${nodes.either.output}"}}}
edges:
  - {from: wait, to: got_it}
  - {from: wait, to: gave_up, timeout: true}
  - {from: got_it, to: either}
  - {from: gave_up, to: either}
  - {from: either, to: done}
"""

# A wait beside two tasks: one to fail, one still in flight when it does.
BESIDE_WORK = """
id: beside
nodes:
  - {id: split, type: parallel}
  - {id: slow, type: task, params: {handler: h.slow}}
  - {id: broken, type: task, params: {handler: h.broken}}
  - {id: wait, type: wait_event, params: {type: approval.given}, timeout: 1h}
  - {id: after_event, type: task, params: {handler: h.after}}
  - {id: after_timeout, type: task, params: {handler: h.late}}
  - {id: gather, type: join, params: {wait_for: all}}
  - {id: done, type: end}
edges:
  - {from: split, to: slow}
  - {from: split, to: broken}
  - {from: split, to: wait}
  - {from: wait, to: after_event}
  - {from: wait, to: after_timeout, timeout: true}
  - {from: slow, to: gather}
  - {from: broken, to: gather}
  - {from: after_event, to: gather}
  - {from: after_timeout, to: gather}
  - {from: gather, to: done}
"""


def without_timeout_edge(text: str) -> Workflow:
    """The workflow with the wait's timeout edge and its target removed."""
    doc = yaml.safe_load(text)
    (edge,) = [e for e in doc["edges"] if e.get("timeout")]
    doc["edges"].remove(edge)
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != edge["to"]]
    return compile_workflow(doc)


def start(wf: Workflow, input_: Any = None, event: dict[str, Any] | None = None) -> StepResult:
    return applied(wf, None, StartExecution("start", EX, T0, wf.id, 1, input_, event))


def waiting(wf: Workflow, input_: Any = INPUT) -> tuple[ExecutionState, list[Outgoing]]:
    """Start and run every control step: the execution is parked at its waits and tasks."""
    return settle(wf, start(wf, input_))


def arrived(at: int, event: dict[str, Any] = EVENT, node_id: str = "wait") -> EventArrived:
    return EventArrived(f"{EX}/{node_id}/1/await/arrived", EX, at, node_id, event)


def fired(at: int, timer_id: str = "wait/1/timeout") -> TimerFired:
    return TimerFired(f"{timer_id}/fired", EX, at, timer_id)


def task_done(state: ExecutionState, node_id: str, at: int) -> NodeCompleted:
    return NodeCompleted(f"{node_id}/done", EX, at, node_id, state.nodes[node_id].attempt, "ok")


# -- reaching a wait


def test_reaching_a_wait_parks_the_node_registers_the_wait_and_sets_its_timer() -> None:
    wf = workflow(APPROVAL)
    state = applied(wf, None, StartExecution("start", EX, T0, "approval", 1, INPUT)).state
    state = applied(wf, state, RunNode(f"{EX}/ask/run", EX, T0, "ask")).state
    reached = applied(wf, state, RunNode(f"{EX}/wait/run", EX, T0 + 50, "wait"))

    assert reached.state is not None and reached.state.status == "running"
    assert reached.state.nodes["wait"] == NodeRun(
        "wait", "waiting", 1, {"type": "approval.given"}, started_at=T0 + 50
    )
    assert reached.state.timers == {"wait/1/timeout": T0 + 50 + 2 * HOUR}
    assert events(reached.outgoing) == ["node.started:wait"]
    assert of_type(reached.outgoing, AwaitEvent) == [
        AwaitEvent(
            f"{EX}/wait/1/await",
            EX,
            "approval",
            1,
            "wait",
            "approval.given",
            T0 + 50,
            expires_at=T0 + 50 + 2 * HOUR,
            context={
                "execution": {
                    "id": EX,
                    "workflow": "approval",
                    "version": 1,
                    "started_at": iso_time(T0),
                },
                "input": INPUT,
            },
            # The waiting node run's span: the header of the EventArrived that resumes it.
            traceparent=ExecutionTrace.of(EX, None).node_header("wait", 1),
        )
    ]
    assert len(reached.outgoing) == 2


def test_a_wait_without_a_timeout_sets_no_timer_and_never_expires() -> None:
    doc = yaml.safe_load(APPROVAL)
    doc["edges"].pop()
    doc["nodes"].pop()
    del doc["nodes"][1]["timeout"]
    state, sent = waiting(compile_workflow(doc))
    (registration,) = of_type(sent, AwaitEvent)
    assert registration.expires_at is None
    assert state.timers == {}
    assert state.nodes["wait"].status == "waiting"


CONTEXT = {
    "id": "ctx",
    "variables": {"team": "blue", "region": "eu"},
    "nodes": [
        {"id": "shape", "type": "transform", "params": {"set": {"t": "${input.ticket}"}}},
        {"id": "ask", "type": "publish", "params": {"type": "ticket.asked"}},
        {"id": "wait", "type": "wait_event", "params": {"type": "ticket.answered"}},
        {"id": "done", "type": "end"},
    ],
    "edges": [
        {"from": "shape", "to": "ask"},
        {"from": "ask", "to": "wait"},
        {"from": "wait", "to": "done"},
    ],
}


@pytest.mark.parametrize(
    ("correlate", "context"),
    [
        ("event.data.ticket == input.ticket", {"input": INPUT}),
        ("event.data.team == vars.team", {"vars": {"team": "blue", "region": "eu"}}),
        (
            "event.subject == nodes.ask.output.id",
            {
                "nodes": {
                    "ask": {
                        "output": {"id": f"{EX}/ask", "type": "ticket.asked"},
                        "status": "completed",
                    }
                }
            },
        ),
        (
            "event.data.t == nodes.shape.output.t && event.subject == execution.id",
            {
                "nodes": {"shape": {"output": {"t": "T-7"}, "status": "completed"}},
                "execution": {
                    "id": EX,
                    "workflow": "ctx",
                    "version": 1,
                    "started_at": iso_time(T0),
                },
            },
        ),
        ("event.data.ok == true", {}),
        (None, {}),
    ],
    ids=["input", "vars", "one-node-of-two", "node-and-execution", "event-only", "no-correlate"],
)
def test_the_wait_context_holds_exactly_what_correlate_reads_besides_the_event(
    correlate: str | None, context: dict[str, Any]
) -> None:
    doc = copy.deepcopy(CONTEXT)
    if correlate is not None:
        doc["nodes"][2]["params"]["correlate"] = correlate
    _, sent = waiting(compile_workflow(doc))
    (registration,) = of_type(sent, AwaitEvent)
    assert registration.context == context
    assert registration.event_type == "ticket.answered"


def test_a_correlate_that_reads_dept_does_not_crash_the_engine() -> None:
    doc = copy.deepcopy(CONTEXT)
    doc["nodes"][2]["params"]["correlate"] = "event.data.team == dept.name"
    wf = compile_workflow(doc)  # `dept` is in scope for expressions: the definition is valid
    state, _ = waiting(wf)
    wait = state.nodes["wait"]
    assert wait.status == "waiting" or (
        wait.status == "failed" and wait.error is not None and wait.error.type == "ExpressionError"
    )


def test_workflow_started_names_the_input_and_the_triggering_event() -> None:
    wf = workflow(APPROVAL)
    result = start(wf, INPUT, EVENT)
    (started,) = [o for o in result.outgoing if isinstance(o, LifecycleEvent)]
    assert started.type == "workflow.started"
    assert started.data == {
        "input": INPUT,
        "event": {"id": "ev-1", "type": "approval.given", "source": "/hr", "subject": EX},
    }
    assert result.state is not None and result.state.event == EVENT


def test_workflow_started_without_a_trigger_event_says_none() -> None:
    result = start(workflow(APPROVAL), INPUT)
    assert of_type(result.outgoing, LifecycleEvent)[0].data == {"input": INPUT, "event": None}


def test_workflow_started_gives_none_for_event_attributes_the_event_lacks() -> None:
    result = start(workflow(APPROVAL), None, {"id": "ev-2", "type": "x.y", "source": "/s"})
    assert of_type(result.outgoing, LifecycleEvent)[0].data == {
        "input": None,
        "event": {"id": "ev-2", "type": "x.y", "source": "/s", "subject": None},
    }


# -- the event arrives


def test_an_arriving_event_completes_the_wait_and_takes_the_normal_edge() -> None:
    wf = workflow(APPROVAL)
    state, _ = waiting(wf)
    result = applied(wf, state, arrived(T0 + 100))

    assert result.state is not None
    wait = result.state.nodes["wait"]
    assert (wait.status, wait.output, wait.completed_at) == ("completed", EVENT, T0 + 100)
    assert result.state.timers == {}
    assert result.state.nodes["too_late"].status == "skipped"
    # The end runs in the same step, once the rest of it is done.
    assert events(result.outgoing) == [
        "node.completed:wait",
        "node.skipped:too_late",
        "node.started:approved",
        "node.completed:approved",
        "workflow.completed",
    ]
    assert of_type(result.outgoing, RunNode) == []
    assert of_type(result.outgoing, LifecycleEvent)[0].data == EVENT
    assert result.state.status == "completed"
    assert result.state.output == {"answer": {"who": "ada", "ok": True}}


def test_the_skipped_timeout_branch_counts_as_dead_at_a_join() -> None:
    wf = workflow(CONVERGING)
    state, _ = waiting(wf)
    result = applied(wf, state, arrived(T0 + 100))
    assert result.state is not None
    assert result.state.nodes["gave_up"].status == "skipped"
    gave_up_edge = next(e.index for e in wf.nodes["either"].inbound if e.source == "gave_up")
    assert result.state.joins["either"].dead == (gave_up_edge,)

    final, _ = settle(wf, result)
    assert final.status == "completed"
    assert final.output == {"all": {"got_it": {"answer": {"who": "ada", "ok": True}}}}


def test_a_second_event_for_the_same_wait_is_ignored() -> None:
    # A control step follows the wait: the execution still runs when the second event comes.
    wf = workflow(CONVERGING)
    state, _ = waiting(wf)
    once = applied(wf, state, arrived(T0 + 100)).state
    assert once is not None and once.status == "running"
    other = arrived(T0 + 200, {**EVENT, "id": "ev-2", "data": {"who": "ada", "ok": False}})
    assert "not waiting" in assert_ignored(wf, once, other)
    assert "not waiting" in assert_ignored(wf, once, arrived(T0 + 100))


def test_an_event_for_a_node_that_is_not_waiting_is_ignored() -> None:
    wf = workflow(APPROVAL)
    state = start(wf, INPUT).state
    assert state is not None
    assert_ignored(wf, state, arrived(T0 + 1))  # the wait has not begun
    assert_ignored(wf, state, arrived(T0 + 1, node_id="ask"))


# -- the timer fires


def test_a_timeout_takes_the_timeout_edge() -> None:
    wf = workflow(APPROVAL)
    state, _ = waiting(wf)
    result = applied(wf, state, fired(T0 + 2 * HOUR))

    assert result.state is not None
    wait = result.state.nodes["wait"]
    assert (wait.status, wait.output, wait.error) == ("completed", {"timed_out": True}, None)
    assert result.state.timers == {}
    assert result.state.nodes["approved"].status == "skipped"
    assert of_type(result.outgoing, RunNode) == []
    assert events(result.outgoing) == [
        "node.completed:wait",
        "node.skipped:approved",
        "node.started:too_late",
        "node.completed:too_late",
        "workflow.completed",
    ]
    assert result.state.status == "completed"
    assert result.state.output == {"answer": None}


def test_a_timeout_reaches_a_join_through_the_timeout_branch() -> None:
    wf = workflow(CONVERGING)
    state, _ = waiting(wf)
    final, _ = settle(wf, applied(wf, state, fired(T0 + HOUR)))
    assert final.nodes["got_it"].status == "skipped"
    assert final.status == "completed"
    assert final.output == {"all": {"gave_up": {"answer": None}}}


def test_a_timeout_without_a_timeout_edge_fails_the_node_and_the_execution() -> None:
    wf = without_timeout_edge(APPROVAL)
    state, _ = waiting(wf)
    result = applied(wf, state, fired(T0 + 2 * HOUR))

    assert result.state is not None
    wait = result.state.nodes["wait"]
    assert wait.status == "failed"
    assert wait.error is not None
    assert (wait.error.type, wait.error.node_id) == ("Timeout", "wait")
    assert "approval.given" in wait.error.message
    assert result.state.status == "failed"
    assert result.state.error == wait.error
    assert result.state.timers == {}
    assert events(result.outgoing) == [
        "node.failed:wait",
        "node.dead_lettered:wait",
        "workflow.failed",
    ]


@pytest.mark.parametrize("timer_id", ["wait/2/timeout", "other/1/timeout", "nonsense"])
def test_a_timer_that_is_not_pending_is_ignored(timer_id: str) -> None:
    wf = workflow(APPROVAL)
    state, _ = waiting(wf)
    assert "not pending" in assert_ignored(wf, state, fired(T0 + 2 * HOUR, timer_id))


def test_a_timer_that_fired_already_is_ignored_and_so_is_a_late_event() -> None:
    # A control step follows the wait: the execution still runs after its timeout.
    wf = workflow(CONVERGING)
    state, _ = waiting(wf)
    timed_out = applied(wf, state, fired(T0 + HOUR)).state
    assert timed_out is not None and timed_out.status == "running"
    assert "not pending" in assert_ignored(wf, timed_out, fired(T0 + HOUR))
    assert "not waiting" in assert_ignored(wf, timed_out, arrived(T0 + 3 * HOUR))


def test_an_event_after_a_timeout_that_failed_the_execution_is_ignored() -> None:
    wf = without_timeout_edge(APPROVAL)
    state, _ = waiting(wf)
    failed = applied(wf, state, fired(T0 + 2 * HOUR)).state
    assert failed is not None
    assert assert_ignored(wf, failed, arrived(T0 + 3 * HOUR)) == "execution already failed"


def test_an_event_after_the_wait_removes_its_timer_so_the_timer_is_ignored() -> None:
    # A control step follows the wait: the execution still runs when the timer comes.
    wf = workflow(CONVERGING)
    state, _ = waiting(wf)
    done = applied(wf, state, arrived(T0 + 100)).state
    assert done is not None and done.status == "running"
    assert "not pending" in assert_ignored(wf, done, fired(T0 + HOUR))


# -- cancel and failure around a wait


def test_cancelling_a_waiting_execution_cancels_the_wait_and_clears_the_timers() -> None:
    wf = workflow(APPROVAL)
    state, _ = waiting(wf)
    result = applied(wf, state, CancelExecution("cancel", EX, T0 + 100, "operator asked"))

    assert result.state is not None and result.state.status == "cancelled"
    assert result.state.nodes["wait"].status == "cancelled"
    assert result.state.nodes["wait"].completed_at == T0 + 100
    assert result.state.timers == {}
    assert events(result.outgoing) == ["workflow.cancelled"]
    ignored = assert_ignored(wf, result.state, arrived(T0 + 200))
    assert ignored == "execution already cancelled"
    assert_ignored(wf, result.state, fired(T0 + 2 * HOUR))


def test_a_failure_elsewhere_does_not_wait_for_the_waiting_node() -> None:
    wf = workflow(BESIDE_WORK)
    state, _ = waiting(wf)
    state = applied(wf, state, task_done(state, "slow", T0 + 1)).state
    assert state is not None
    error = NodeError("RuntimeError", "boom")
    result = applied(wf, state, NodeFailed("broken/failed", EX, T0 + 2, "broken", 1, error))

    assert result.state is not None and result.state.status == "failed"
    assert result.state.error == NodeError("RuntimeError", "boom", "broken")
    assert result.state.nodes["wait"].status == "cancelled"
    assert result.state.timers == {}
    assert events(result.outgoing) == [
        "node.failed:broken",
        "node.dead_lettered:broken",
        "workflow.failed",
    ]


def test_a_failing_execution_ends_when_its_running_work_drains_though_a_node_still_waits() -> None:
    wf = workflow(BESIDE_WORK)
    state, _ = waiting(wf)
    error = NodeError("RuntimeError", "boom")
    failing = applied(wf, state, NodeFailed("broken/failed", EX, T0 + 1, "broken", 1, error)).state
    assert failing is not None and failing.status == "running"
    assert failing.nodes["wait"].status == "waiting"

    result = applied(wf, failing, task_done(failing, "slow", T0 + 2))
    assert result.state is not None and result.state.status == "failed"
    assert result.state.nodes["wait"].status == "cancelled"
    assert result.state.timers == {}


@pytest.mark.parametrize("transition", [arrived(T0 + 2), fired(T0 + HOUR)], ids=["event", "timer"])
def test_a_wait_that_ends_while_the_execution_is_failing_starts_no_new_work(
    transition: Transition,
) -> None:
    wf = workflow(BESIDE_WORK)
    state, _ = waiting(wf)
    error = NodeError("RuntimeError", "boom")
    failing = applied(wf, state, NodeFailed("broken/failed", EX, T0 + 1, "broken", 1, error)).state
    assert failing is not None and failing.status == "running" and failing.error is not None

    result = step(wf, failing, transition)
    assert result.state is not None
    assert of_type(result.outgoing, TaskRequest) == []
    assert not {"after_event", "after_timeout"} & {
        n for n, r in result.state.nodes.items() if r.status != "skipped"
    }
    # Only `slow` is in flight: when it finishes, the execution fails.
    finished = step(wf, result.state, task_done(failing, "slow", T0 + HOUR + 1))
    assert finished.state is not None and finished.state.status == "failed"


# -- publish


def test_a_publish_node_emits_its_event_and_outputs_its_id_and_type() -> None:
    wf = workflow(APPROVAL)
    state = start(wf, INPUT).state
    result = applied(wf, state, RunNode(f"{EX}/ask/run", EX, T0 + 5, "ask"))

    assert of_type(result.outgoing, PublishEvent) == [
        PublishEvent(
            f"{EX}/ask",
            EX,
            "approval",
            "ask",
            T0 + 5,
            "approval.leave.requested",
            {"who": "ada", "topic": "approvals"},
            EX,
        )
    ]
    output = {"id": f"{EX}/ask", "type": "approval.leave.requested"}
    assert result.state is not None
    ask = result.state.nodes["ask"]
    assert (ask.status, ask.output) == ("completed", output)
    assert events(result.outgoing) == ["node.started:ask", "node.completed:ask"]
    assert of_type(result.outgoing, LifecycleEvent)[1].data == output
    assert [r.node_id for r in of_type(result.outgoing, RunNode)] == ["wait"]


def test_a_publish_without_data_or_subject_sends_none_for_them() -> None:
    doc = yaml.safe_load(APPROVAL)
    doc["nodes"][0]["params"] = {"type": "approval.requested"}
    wf = compile_workflow(doc)
    result = applied(wf, start(wf, INPUT).state, RunNode("r", EX, T0, "ask"))
    (published,) = of_type(result.outgoing, PublishEvent)
    assert (published.type, published.data, published.subject) == (
        "approval.requested",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("param", "template", "kind"),
    [
        ("type", "${input.kind}", 5),
        ("type", "${input.kind}", ""),
        ("type", "${input.kind}", None),
        ("type", "${input.kind}", ["a"]),
        # Types whose first segment names no Kafka topic: sending them would fail.
        ("type", "${input.kind}", "hello world"),
        ("type", "${input.kind}", ".said"),
        ("subject", "${input.kind}", 7),
    ],
)
def test_a_publish_whose_type_or_subject_renders_badly_fails_with_an_expression_error(
    param: str, template: str, kind: Any
) -> None:
    doc = yaml.safe_load(APPROVAL)
    doc["nodes"][0]["params"][param] = template
    wf = compile_workflow(doc)
    result = applied(wf, start(wf, {**INPUT, "kind": kind}).state, RunNode("r", EX, T0, "ask"))

    assert of_type(result.outgoing, PublishEvent) == []
    assert result.state is not None
    ask = result.state.nodes["ask"]
    assert ask.status == "failed"
    assert ask.error is not None
    assert (ask.error.type, ask.error.node_id) == ("ExpressionError", "ask")
    assert f"params.{param} gave {kind!r}" in ask.error.message
    assert result.state.status == "failed"
    assert events(result.outgoing) == [
        "node.started:ask",
        "node.failed:ask",
        "node.dead_lettered:ask",
        "workflow.failed",
    ]


# -- redelivery


@pytest.mark.parametrize("ending", ["event", "timeout", "timeout-without-edge", "cancel"])
def test_every_transition_applied_again_changes_nothing(ending: str) -> None:
    wf = without_timeout_edge(APPROVAL) if ending == "timeout-without-edge" else workflow(APPROVAL)
    last = {
        "event": arrived(T0 + 100),
        "timeout": fired(T0 + 2 * HOUR),
        "timeout-without-edge": fired(T0 + 2 * HOUR),
        "cancel": CancelExecution("cancel", EX, T0 + 100),
    }[ending]
    history: list[tuple[Transition, ExecutionState]] = []
    state: ExecutionState | None = None
    pending: list[Transition] = [StartExecution("start", EX, T0, wf.id, 1, INPUT), last]
    while pending:
        transition = pending.pop(0)
        result = applied(wf, state, transition)
        assert result.state is not None
        state = result.state
        history.append((transition, state))
        pending[:0] = of_type(result.outgoing, RunNode)
        assert_ignored(wf, state, transition)
    assert state is not None and state.finished
    assert any(isinstance(t, type(last)) for t, _ in history)
    for transition, _ in history:
        assert_ignored(wf, state, transition)


# A publish, a wait with a timeout edge, and a task beside them.
SCRAMBLED = """
id: scrambled
nodes:
  - {id: split, type: parallel}
  - {id: ask, type: publish, params: {type: approval.requested, subject: "${execution.id}"}}
  - id: wait
    type: wait_event
    params: {type: approval.given, correlate: "event.subject == execution.id"}
    timeout: 1h
  - {id: got_it, type: transform, params: {set: {answer: "${nodes.wait.output.data}"}}}
  - {id: gave_up, type: transform, params: {set: {answer: null}}}
  - {id: either, type: join, params: {wait_for: any}}
  - {id: work, type: task, params: {handler: h.work}}
  - {id: merged, type: join, params: {wait_for: all}}
  - {id: done, type: end, params: {output: {all: "${nodes.merged.output}"}}}
edges:
  - {from: split, to: ask}
  - {from: split, to: work}
  - {from: ask, to: wait}
  - {from: wait, to: got_it}
  - {from: wait, to: gave_up, timeout: true}
  - {from: got_it, to: either}
  - {from: gave_up, to: either}
  - {from: either, to: merged}
  - {from: work, to: merged}
  - {from: merged, to: done}
"""


def waits_run(wf: Workflow, data: st.DataObject) -> Trace:
    """Deliver records in a drawn order, with duplicates and crashes before commit.

    Each wait registration may be answered by the event (drawn) and, with a
    timeout, by its timer: whichever is delivered first wins.
    """

    def answer_task(request: TaskRequest, clock: int, data: st.DataObject) -> list[Transition]:
        return [NodeCompleted(f"{request.idempotency_key}/done", EX, clock, "work", 1, 1)]

    def answer_step(
        before: ExecutionState | None, result: StepResult, clock: int, data: st.DataObject
    ) -> list[Transition]:
        answers: list[Transition] = []
        for out in result.outgoing:
            if isinstance(out, AwaitEvent):
                if data.draw(st.booleans(), label="the event comes"):
                    answers.append(EventArrived(f"{out.id}/arrived", EX, clock, out.node_id, EVENT))
                assert out.expires_at is not None
                timer = f"{out.node_id}/1/timeout"
                answers.append(TimerFired(f"{timer}/fired", EX, out.expires_at, timer))
        return answers

    start = StartExecution("start", EX, T0, wf.id, 1, INPUT)
    return scrambled_run(wf, data, start, answer_task, answer_step, T0)


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_a_wait_settles_once_in_any_delivery_order_with_duplicates_and_crashes(
    data: st.DataObject,
) -> None:
    wf = workflow(SCRAMBLED)
    trace = waits_run(wf, data)
    state = trace.state
    assert state is not None and state.status == "completed", state
    assert state.timers == {}

    endings = [t for t in trace.applied if isinstance(t, (EventArrived, TimerFired))]
    assert len(endings) == 1, "the wait ends once: by the event or by its timer"
    event(f"ended by: {type(endings[0]).__name__}")
    wait = state.nodes["wait"]
    if isinstance(endings[0], EventArrived):
        assert wait.output == EVENT
        assert state.nodes["gave_up"].status == "skipped"
        assert state.output == {"all": {"either": {"got_it": {"answer": EVENT["data"]}}, "work": 1}}
    else:
        assert wait.output == {"timed_out": True}
        assert state.nodes["got_it"].status == "skipped"
        assert state.output == {"all": {"either": {"gave_up": {"answer": None}}, "work": 1}}

    assert {o.id for o in trace.emitted if isinstance(o, PublishEvent)} == {f"{EX}/ask"}
    assert {o.id for o in trace.emitted if isinstance(o, AwaitEvent)} == {f"{EX}/wait/1/await"}
    for transition in trace.applied:
        assert_ignored(wf, state, transition)
