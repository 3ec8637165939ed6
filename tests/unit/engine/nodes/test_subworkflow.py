"""The engine on subworkflow nodes: the child started and waited for, its end, its parent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from engine_driver import applied, assert_ignored, of_type, settle, workflow
from engine_scenarios import CHILD, EX, HOUR, T0, child_done, done, failed, fired, start, started

from braidflow.engine import (
    MAX_SUBWORKFLOW_DEPTH,
    CancelExecution,
    ChildFinished,
    ControlAction,
    NodeError,
    ParentLink,
    StartExecution,
    TaskRequest,
    child_execution_id,
    step,
)
from braidflow.engine.trace_context import ExecutionTrace
from braidflow.topology import Workflow

# -- subworkflows


CALLER = """
id: caller
variables: {team: blue}
nodes:
  - id: call
    type: subworkflow
    params: {workflow: callee, input: {who: "${input.who}"}, wait: WAIT, inherit_context: INHERIT}
    TIMEOUT
  - {id: done, type: end, params: {output: {child: "${nodes.call.output}"}}}
edges:
  - {from: call, to: done}
"""


def caller(wait: bool = True, inherit: bool = True) -> Workflow:
    text = CALLER.replace("WAIT", str(wait).lower()).replace("INHERIT", str(inherit).lower())
    return workflow(text.replace("TIMEOUT", "timeout: 1h" if wait else ""))


def test_a_subworkflow_starts_its_child_and_waits_for_it() -> None:
    wf = caller()
    state, sent = started(wf, {"who": "ada"})
    (child,) = of_type(sent, StartExecution)
    assert child == StartExecution(
        f"{CHILD}/start",
        CHILD,
        T0,
        "callee",
        0,
        {"who": "ada"},
        None,
        ParentLink(EX, "caller", "call", 1, {"input": {"who": "ada"}, "vars": {"team": "blue"},
                                              "event": None}),
        # The child's span is a child of the calling node run's span.
        traceparent=ExecutionTrace.of(EX, None).node_header("call", 1),
    )  # fmt: skip
    assert state.nodes["call"].status == "waiting"
    assert state.children == {"call": CHILD}
    assert state.timers == {"call/1/timeout": T0 + HOUR}


def test_a_subworkflow_without_inherit_context_gives_the_child_no_parent_view() -> None:
    _, sent = started(caller(inherit=False), {"who": "ada"})
    (child,) = of_type(sent, StartExecution)
    assert child.parent is not None and child.parent.context is None


def test_a_subworkflow_that_does_not_wait_completes_with_the_child_id() -> None:
    wf = caller(wait=False)
    state, sent = started(wf, {"who": "ada"})
    assert len(of_type(sent, StartExecution)) == 1
    assert state.status == "completed"
    assert state.output == {"child": {"execution_id": CHILD}}
    assert state.children == {}


def test_the_child_output_becomes_the_node_output() -> None:
    wf = caller()
    state, _ = started(wf, {"who": "ada"})
    result = applied(wf, state, child_done(output={"ok": True}))
    assert result.state is not None and result.state.children == {}
    assert result.state.timers == {}
    final, _ = settle(wf, result)
    assert final.output == {"child": {"ok": True}}


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("failed", NodeError("ValueError", "bad", "x"), NodeError("ValueError", f"{CHILD}: bad", "call")),
        ("cancelled", NodeError("Cancelled", "stop"), NodeError("Cancelled", f"{CHILD}: stop", "call")),
    ],
)  # fmt: skip
def test_a_child_that_fails_or_is_cancelled_fails_the_node_with_its_error(
    status: str, error: NodeError, expected: NodeError
) -> None:
    wf = caller()
    state, _ = started(wf, {"who": "ada"})
    result = applied(wf, state, child_done(status, error=error))
    assert result.state is not None and result.state.status == "failed"
    assert result.state.nodes["call"].error == expected


def test_the_finish_of_another_child_is_ignored() -> None:
    wf = caller()
    state, _ = started(wf, {"who": "ada"})
    assert "not waiting for child" in assert_ignored(wf, state, child_done(child="someone-else"))


def test_a_subworkflow_timeout_fails_the_node_and_cancels_the_child() -> None:
    wf = caller()
    state, _ = started(wf, {"who": "ada"})
    result = applied(wf, state, fired("call/1/timeout", T0 + HOUR))
    assert result.state is not None and result.state.status == "failed"
    assert result.state.nodes["call"].error is not None
    assert result.state.nodes["call"].error.type == "Timeout"
    (cancel,) = of_type(result.outgoing, CancelExecution)
    assert (cancel.id, cancel.execution_id, cancel.by) == (f"{CHILD}/cancel", CHILD, EX)
    assert_ignored(wf, result.state, child_done(output=1))


def test_cancelling_a_parent_cancels_the_children_it_waits_for() -> None:
    wf = caller()
    state, _ = started(wf, {"who": "ada"})
    result = applied(wf, state, CancelExecution("stop", EX, T0 + 9, "no longer needed", "bob"))
    assert result.state is not None and result.state.status == "cancelled"
    assert [c.execution_id for c in of_type(result.outgoing, CancelExecution)] == [CHILD]
    assert result.state.control == (
        ControlAction("cancel", "bob", T0 + 9, reason="no longer needed"),
    )


CALLEE = """
id: callee
nodes:
  - {id: work, type: task, params: {handler: h, input: {team: "${parent.vars.team}"}}}
  - {id: done, type: end, params: {output: {did: "${nodes.work.output}"}}}
edges:
  - {from: work, to: done}
"""


LINK = ParentLink("parent-ex", "caller", "call", 1, {"input": {}, "vars": {"team": "blue"},
                                                     "event": None})  # fmt: skip


def test_a_child_reads_its_parent_and_reports_its_end_to_it() -> None:
    wf = workflow(CALLEE)
    begun = start(wf, {"who": "ada"}, LINK)
    (request,) = of_type(begun.outgoing, TaskRequest)
    assert request.input == {"team": "blue"}
    result = applied(wf, begun.state, done("work", 1, T0 + 5, "did it"))
    final, sent = settle(wf, result)
    assert final.status == "completed"
    (finished,) = of_type(sent, ChildFinished)
    assert finished == ChildFinished(
        f"{EX}/finished", "parent-ex", T0 + 5, "call", EX, "completed", {"did": "did it"}, None
    )


def test_a_child_that_fails_reports_it_too() -> None:
    wf = workflow(CALLEE)
    begun = start(wf, None, LINK)
    result = applied(wf, begun.state, failed("work", 1, T0 + 5))
    (finished,) = of_type(result.outgoing, ChildFinished)
    assert (finished.status, finished.error) == ("failed", NodeError("E", "boom", "work"))


def test_a_child_nested_too_deep_fails_at_once_and_tells_its_parent() -> None:
    wf = workflow(CALLEE)
    deep = replace(LINK, depth=MAX_SUBWORKFLOW_DEPTH + 1)
    result = start(wf, None, deep)
    assert result.state is not None and result.state.status == "failed"
    assert result.state.error is not None and result.state.error.type == "SubworkflowDepth"
    assert "deeper than 16" in result.state.error.message
    assert of_type(result.outgoing, TaskRequest) == []
    (finished,) = of_type(result.outgoing, ChildFinished)
    assert (finished.execution_id, finished.status) == ("parent-ex", "failed")
    assert start(wf, None, replace(LINK, depth=MAX_SUBWORKFLOW_DEPTH)).state.status == "running"


def test_a_start_for_the_latest_version_is_left_to_the_runtime() -> None:
    result = step(workflow(CALLEE), None, StartExecution("s", EX, T0, "callee", 0))
    assert result.state is None and result.ignored is not None


def test_child_ids_are_derived_from_the_parent_node_and_attempt() -> None:
    assert child_execution_id("ex", "call", 1) == "ex.call"
    assert child_execution_id("ex", "call", 2) == "ex.call.2"
