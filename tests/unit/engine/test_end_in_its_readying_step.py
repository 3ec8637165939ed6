"""The engine on the end node: it runs in the step that readies it, once the rest of that
step is done, and only on an execution still running."""

from __future__ import annotations

from engine_driver import applied, assert_ignored, events, of_type, workflow
from engine_scenarios import EX, T0, done, start

from braidflow.engine import (
    CancelExecution,
    ChildFinished,
    DeadLetterNode,
    NodeError,
    ParentLink,
    PauseExecution,
    RedriveNode,
    ResumeExecution,
    RunNode,
    step,
)

CHAIN = """
id: chain
nodes:
  - {id: call, type: task, params: {handler: h}}
  - {id: done, type: end, params: {output: OUTPUT}}
edges:
  - {from: call, to: done}
"""

# A branch that cannot start beside an end: the execution fails in the step that readies both.
FAILING_BESIDE_AN_END = """
id: beside
nodes:
  - {id: split, type: parallel}
  - {id: bad, type: task, params: {handler: h, input: {x: "${input.missing.field}"}}}
  - {id: after_bad, type: end}
  - {id: done, type: end}
edges:
  - {from: split, to: bad}
  - {from: split, to: done}
  - {from: bad, to: after_bad}
"""

TWO_ENDS = """
id: two_ends
nodes:
  - {id: split, type: parallel}
  - {id: one, type: end, params: {output: {n: 1}}}
  - {id: two, type: end, params: {output: {n: 2}}}
edges:
  - {from: split, to: one}
  - {from: split, to: two}
"""


def chain(output: str = '{got: "${nodes.call.output}"}') -> str:
    return CHAIN.replace("OUTPUT", output)


def test_the_result_that_readies_the_end_completes_the_execution_in_its_step() -> None:
    wf = workflow(chain())
    result = applied(wf, start(wf).state, done("call", 1, T0 + 10, {"user": "ada"}))
    assert result.state is not None
    assert events(result.outgoing) == [
        "node.completed:call",
        "node.started:done",
        "node.completed:done",
        "workflow.completed",
    ]
    assert of_type(result.outgoing, RunNode) == []
    assert (result.state.status, result.state.output) == ("completed", {"got": {"user": "ada"}})
    assert result.state.nodes["done"].completed_at == T0 + 10
    # A cancel that comes after the result finds the execution ended.
    cancel = CancelExecution("c", EX, T0 + 11, "too late")
    assert assert_ignored(wf, result.state, cancel) == "execution already completed"


def test_apart_the_end_gets_a_run_node_of_its_own_and_runs_in_it() -> None:
    # The runtime's way out for a step too large to store with the end's output beside it.
    wf = workflow(chain())
    result = step(wf, start(wf).state, done("call", 1, T0 + 10, {"user": "ada"}), apart=True)
    assert result.state is not None and result.state.status == "running"
    assert events(result.outgoing) == ["node.completed:call"]
    (run,) = of_type(result.outgoing, RunNode)
    assert run.node_id == "done"
    ended = applied(wf, result.state, run)
    assert ended.state is not None
    assert (ended.state.status, ended.state.output) == ("completed", {"got": {"user": "ada"}})


def test_a_child_reports_to_its_parent_in_the_step_that_readies_its_end() -> None:
    wf = workflow(chain())
    link = ParentLink("parent", "outer", "call_child", 1, None)
    started = start(wf, None, link).state
    result = applied(wf, started, done("call", 1, T0 + 10, 7))
    (finished,) = of_type(result.outgoing, ChildFinished)
    assert (finished.execution_id, finished.node_id, finished.output) == (
        "parent",
        "call_child",
        {"got": 7},
    )


def test_an_end_whose_output_template_fails_fails_the_execution_with_the_reason() -> None:
    wf = workflow(chain('{got: "${nodes.call.output.user.name}"}'))
    result = applied(wf, start(wf).state, done("call", 1, T0 + 10, {"user": "ada"}))
    assert result.state is not None
    assert events(result.outgoing) == [
        "node.completed:call",
        "node.started:done",
        "node.failed:done",
        "node.dead_lettered:done",
        "workflow.failed",
    ]
    error = result.state.error
    assert result.state.status == "failed"
    assert error is not None and (error.type, error.node_id) == ("ExpressionError", "done")
    assert "nodes.call.output.user.name" in error.message
    (letter,) = of_type(result.outgoing, DeadLetterNode)
    assert letter.node_id == "done"

    # A redrive runs the end again in the redrive's step: the same template fails again.
    redriven = step(wf, result.state, RedriveNode("r", EX, T0 + 20, "done", "ops"))
    assert (
        redriven.ignored is None
        and redriven.state is not None
        and redriven.state.status == "failed"
    )
    assert redriven.state.nodes["done"].attempt == 2
    assert events(redriven.outgoing)[:3] == [
        "node.redriven:done",
        "node.started:done",
        "node.failed:done",
    ]


def test_an_end_whose_output_is_no_object_fails_the_execution_naming_it() -> None:
    wf = workflow(chain('"${nodes.call.output.user}"'))
    result = applied(wf, start(wf).state, done("call", 1, T0 + 10, {"user": "ada"}))
    assert result.state is not None and result.state.status == "failed"
    assert result.state.error == NodeError(
        "InvalidOutput", "the output of end node 'done' is a string, not an object", "done"
    )


def test_an_end_readied_beside_a_branch_that_fails_does_not_complete_the_execution() -> None:
    wf = workflow(FAILING_BESIDE_AN_END)
    started = start(wf, {})
    (run,) = of_type(started.outgoing, RunNode)
    result = applied(wf, started.state, run)
    assert result.state is not None
    assert result.state.status == "failed"
    assert result.state.error is not None and result.state.error.node_id == "bad"
    assert "done" not in result.state.nodes
    assert "workflow.completed" not in events(result.outgoing)


def test_two_ends_readied_in_one_step_end_the_execution_once_with_the_first() -> None:
    wf = workflow(TWO_ENDS)
    started = start(wf)
    (run,) = of_type(started.outgoing, RunNode)
    result = applied(wf, started.state, run)
    assert result.state is not None
    assert (result.state.status, result.state.output) == ("completed", {"n": 1})
    assert events(result.outgoing).count("workflow.completed") == 1
    assert "two" not in result.state.nodes


def test_a_result_held_while_paused_runs_the_end_in_the_resume_step() -> None:
    wf = workflow(chain())
    paused = applied(wf, start(wf).state, PauseExecution("p", EX, T0 + 1)).state
    held = step(wf, paused, done("call", 1, T0 + 2, 5))
    assert held.state is not None and held.state.status == "running"
    resumed = applied(wf, held.state, ResumeExecution("r", EX, T0 + 3))
    assert resumed.state is not None
    assert (resumed.state.status, resumed.state.output) == ("completed", {"got": 5})
    assert events(resumed.outgoing) == [
        "workflow.resumed",
        "node.completed:call",
        "node.started:done",
        "node.completed:done",
        "workflow.completed",
    ]
