"""The engine on loop nodes: passes one after another until `while` fails or `count` is
reached, the max_iterations limit, failing passes, timeouts, redelivery, dry runs."""

from __future__ import annotations

from typing import Any

import pytest
from engine_driver import assert_ignored, events, of_type, settle

from braidflow.engine import (
    CancelExecution,
    ChildFinished,
    ExecutionState,
    NodeCompleted,
    NodeError,
    NodeFailed,
    RedriveNode,
    StartExecution,
    TaskRequest,
    TimerFired,
    step,
)
from braidflow.engine.dry_run import dry_run, parse_answers
from braidflow.engine.state import ExecutionStatus, LoopProgress, NodeStatus
from braidflow.schemas import decode_state, encode_state
from braidflow.topology import DefinitionError, Workflow, compile_workflow

EX = "ex"
T0 = 1_750_000_000_000
POLL_WHILE = "${last.output.status != 'done'}"


def loop_workflow(params: dict[str, Any], *, on_error: bool = False, **node: Any) -> Workflow:
    """poll (a loop with `params`) -> done, which outputs the loop's output."""
    nodes: list[dict[str, Any]] = [
        {"id": "poll", "type": "loop", "params": {"do": "check-job"} | params, **node},
        {"id": "done", "type": "end", "params": {"output": {"out": "${nodes.poll.output}"}}},
    ]
    edges: list[dict[str, Any]] = [{"from": "poll", "to": "done"}]
    if on_error:
        nodes.append({"id": "gave_up", "type": "end", "params": {"output": {"gave_up": True}}})
        edges.append({"from": "poll", "to": "gave_up", "on_error": True})
    return compile_workflow(
        {"id": "wf", "input": {"type": "object"}, "nodes": nodes, "edges": edges}
    )


def started(wf: Workflow, input_: Any = None) -> tuple[ExecutionState, list[Any]]:
    result = step(wf, None, StartExecution("start", EX, T0, "wf", 1, input_ or {"job": "j-1"}))
    return settle(wf, result)


def finish_pass(
    wf: Workflow,
    state: ExecutionState,
    start: StartExecution,
    output: Any = None,
    *,
    status: str = ExecutionStatus.COMPLETED,
    error: NodeError | None = None,
) -> tuple[ExecutionState, list[Any]]:
    """The child of `start` ends; applying its ChildFinished again must change nothing."""
    at = state.updated_at + 1
    finished = ChildFinished(
        f"{start.execution_id}/finished", EX, at, "poll", start.execution_id, status, output, error
    )
    result = step(wf, state, finished)
    assert result.ignored is None, result.ignored
    assert_ignored(wf, result.state, finished)
    return settle(wf, result)


def run_passes(
    wf: Workflow, outputs: list[Any]
) -> tuple[ExecutionState, list[StartExecution], list[Any]]:
    """Start the execution and answer each pass with the next of `outputs`, while asked."""
    state, sent = started(wf)
    starts: list[StartExecution] = of_type(sent, StartExecution)
    answered = 0
    while answered < len(starts) and answered < len(outputs) and not state.finished:
        state, more = finish_pass(wf, state, starts[answered], outputs[answered])
        sent.extend(more)
        starts.extend(of_type(more, StartExecution))
        answered += 1
    return state, starts, sent


def test_a_while_loop_runs_passes_until_its_condition_fails() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 10})
    outputs = [{"status": "running"}, {"status": "running"}, {"status": "done", "result": 42}]
    state, starts, _ = run_passes(wf, outputs)
    assert [s.execution_id for s in starts] == ["ex.poll[0]", "ex.poll[1]", "ex.poll[2]"]
    assert {s.workflow_id for s in starts} == {"check-job"}
    assert state.status == ExecutionStatus.COMPLETED
    assert state.output == {"out": {"output": {"status": "done", "result": 42}, "passes": 3}}
    assert state.loops == {} and state.children == {}


def test_passes_run_one_at_a_time() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 10})
    state, sent = started(wf)
    assert len(of_type(sent, StartExecution)) == 1
    assert state.nodes["poll"].status == NodeStatus.WAITING
    assert state.loops == {"poll": LoopProgress("poll", 1)}
    assert state.children == {"poll": "ex.poll[0]"}


def test_each_pass_renders_its_input_from_the_last_pass_and_its_index() -> None:
    input_ = {
        "job": "${input.job}",
        "pass": "${index}",
        "cursor": "${last == null ? 0 : last.output.next}",
    }
    wf = loop_workflow({"count": 3, "max_iterations": 3, "input": input_})
    state, starts, _ = run_passes(wf, [{"next": 5}, {"next": 9}, {"next": 11}])
    assert [s.input for s in starts] == [
        {"job": "j-1", "pass": 0, "cursor": 0},
        {"job": "j-1", "pass": 1, "cursor": 5},
        {"job": "j-1", "pass": 2, "cursor": 9},
    ]
    assert state.output == {"out": {"output": {"next": 11}, "passes": 3}}


def test_a_count_loop_runs_exactly_count_passes() -> None:
    wf = loop_workflow({"count": 2, "max_iterations": 5})
    state, starts, _ = run_passes(wf, ["a", "b", "c"])
    assert len(starts) == 2
    assert state.output == {"out": {"output": "b", "passes": 2}}


def test_a_while_that_still_holds_at_max_iterations_fails_the_node() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 2})
    state, starts, sent = run_passes(wf, [{"status": "running"}] * 5)
    assert len(starts) == 2
    assert state.status == ExecutionStatus.FAILED
    error = state.nodes["poll"].error
    assert error is not None and error.type == "MaxIterations"
    assert "after 2 passes (max_iterations: 2)" in error.message
    assert "node.dead_lettered:poll" in events(sent)
    assert state.loops == {}


def test_max_iterations_reached_takes_the_on_error_edge() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 1}, on_error=True)
    state, _, _ = run_passes(wf, [{"status": "running"}])
    assert state.status == ExecutionStatus.COMPLETED
    assert state.output == {"gave_up": True}


def test_a_failing_pass_fails_the_node_with_the_childs_error() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 5})
    state, sent = started(wf)
    state, _ = finish_pass(wf, state, of_type(sent, StartExecution)[0], {"status": "running"})
    second = StartExecution("x", "ex.poll[1]", 0, "check-job", 0)
    boom = NodeError("http.5xx", "the job service is down")
    state, more = finish_pass(wf, state, second, status=ExecutionStatus.FAILED, error=boom)
    assert state.status == ExecutionStatus.FAILED
    error = state.nodes["poll"].error
    assert error == NodeError("http.5xx", "ex.poll[1]: the job service is down", "poll")
    assert of_type(more, StartExecution) == []


def test_a_while_that_is_not_a_boolean_fails_the_node() -> None:
    wf = loop_workflow({"while": "${last.output}", "max_iterations": 5})
    state, sent = started(wf)
    state, _ = finish_pass(wf, state, of_type(sent, StartExecution)[0], {"status": "x"})
    error = state.nodes["poll"].error
    assert error is not None and error.type == "ExpressionError"
    assert "params.while gave an object, not a boolean" in error.message


def test_a_late_or_repeated_pass_result_is_ignored() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 5})
    state, sent = started(wf)
    first = of_type(sent, StartExecution)[0]
    state, _ = finish_pass(wf, state, first, {"status": "running"})
    # The first pass's result delivered again after the second pass began changes nothing.
    stale = ChildFinished(
        "again", EX, T0 + 9, "poll", first.execution_id, ExecutionStatus.COMPLETED, {}
    )
    assert "is not waiting for child 'ex.poll[0]'" in assert_ignored(wf, state, stale)


def test_loop_progress_survives_the_state_record() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 5})
    state, sent = started(wf)
    state, more = finish_pass(wf, state, of_type(sent, StartExecution)[0], {"status": "running"})
    stored = decode_state(encode_state(state))
    assert stored == state and stored.loops == {"poll": LoopProgress("poll", 2)}
    # The restored state carries on: the second pass ends the loop.
    state, _ = finish_pass(wf, stored, of_type(more, StartExecution)[0], {"status": "done"})
    assert state.output == {"out": {"output": {"status": "done"}, "passes": 2}}


def test_a_timeout_cancels_the_running_pass_and_fails_the_node() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 5}, timeout="1m")
    state, _ = started(wf)
    result = step(wf, state, TimerFired("t", EX, T0 + 60_000, "poll/1/timeout"))
    assert result.state is not None and result.state.status == ExecutionStatus.FAILED
    assert [c.execution_id for c in of_type(result.outgoing, CancelExecution)] == ["ex.poll[0]"]
    error = result.state.nodes["poll"].error
    assert error is not None and error.type == "Timeout"


def test_a_cancel_cancels_the_running_pass() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 5})
    state, _ = started(wf)
    result = step(wf, state, CancelExecution("c", EX, T0 + 5, "stop"))
    assert result.state is not None and result.state.nodes["poll"].status == NodeStatus.CANCELLED
    assert [c.execution_id for c in of_type(result.outgoing, CancelExecution)] == ["ex.poll[0]"]
    assert result.state.loops == {}


def test_a_redrive_runs_the_loop_again_from_its_first_pass() -> None:
    wf = loop_workflow({"while": POLL_WHILE, "max_iterations": 1})
    state, _, _ = run_passes(wf, [{"status": "running"}])
    assert state.status == ExecutionStatus.FAILED
    result = step(wf, state, RedriveNode("r", EX, T0 + 100, "poll", "ops"))
    assert result.ignored is None, result.ignored
    assert [s.execution_id for s in of_type(result.outgoing, StartExecution)] == ["ex.poll.2[0]"]
    patched = step(wf, state, RedriveNode("r2", EX, T0 + 100, "poll", "ops", {"x": 1}))
    assert patched.ignored == "a loop node takes no patched input"


def test_a_dry_run_answers_every_pass_with_the_answer_under_the_loop() -> None:
    wf = loop_workflow({"count": 3, "max_iterations": 3})
    steps = list(dry_run(wf, {"job": "j-1"}, parse_answers({"poll": {"status": "done"}})))
    final = steps[-1][1].state
    assert final is not None and final.status == ExecutionStatus.COMPLETED
    assert final.output == {"out": {"output": {"status": "done"}, "passes": 3}}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_iterations": 3}, "params: a loop needs `while` (a ${...} condition) or `count`"),
        (
            {"while": POLL_WHILE, "count": 2, "max_iterations": 3},
            "params: a loop takes `while` or `count`, not both",
        ),
        ({"count": 5, "max_iterations": 3}, "params.count: 5 is more than max_iterations (3)"),
        (
            {"while": "last.output.done", "max_iterations": 3},
            "params.while: 'last.output.done' is not one ${...} condition",
        ),
        ({"count": 2}, "params: 'max_iterations' is a required property"),
        (
            {"while": "${lats.output.done}", "max_iterations": 3},
            "params.while: `lats.output.done`: unknown name 'lats'",
        ),
    ],
)
def test_loop_params_are_checked(params: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        loop_workflow(params)
    assert any(message in p.message for p in caught.value.problems), caught.value.problems


def test_a_loop_takes_no_retry() -> None:
    with pytest.raises(DefinitionError) as caught:
        loop_workflow({"count": 2, "max_iterations": 2}, retry={"max_attempts": 3})
    assert [p.message for p in caught.value.problems] == [
        "a loop takes no `retry`; retry the nodes of its `do` workflow"
    ]


HTTP_POLL = {
    "type": "http",
    "params": {"method": "GET", "url": "http://jobs.test/${input.job}?pass=${index}"},
    "timeout": "5s",
}


def inline_loop_workflow() -> Workflow:
    return compile_workflow(
        {
            "id": "wf",
            "nodes": [
                {
                    "id": "poll",
                    "type": "loop",
                    "params": {
                        "do": HTTP_POLL,
                        "while": "${last.output.body.status != 'done'}",
                        "max_iterations": 5,
                    },
                },
                {
                    "id": "done",
                    "type": "end",
                    "params": {"output": {"out": "${nodes.poll.output}"}},
                },
            ],
            "edges": [{"from": "poll", "to": "done"}],
        }
    )


def answer_task(
    wf: Workflow, state: ExecutionState, request: TaskRequest, body: Any = None, error: Any = None
) -> tuple[ExecutionState, list[Any]]:
    at = state.updated_at + 1
    if error is None:
        output = {"status": 200, "headers": {}, "body": body}
        t: Any = NodeCompleted(
            f"{request.idempotency_key}/c", EX, at, "poll", 1, output, request.item
        )
    else:
        t = NodeFailed(f"{request.idempotency_key}/f", EX, at, "poll", 1, error, request.item)
    result = step(wf, state, t)
    assert result.ignored is None, result.ignored
    assert_ignored(wf, result.state, t)
    return settle(wf, result)


def test_an_inline_do_sends_one_task_request_per_pass() -> None:
    wf = inline_loop_workflow()
    state, sent = started(wf)
    requests: list[TaskRequest] = of_type(sent, TaskRequest)
    for body in ({"status": "running"}, {"status": "running"}, {"status": "done"}):
        state, more = answer_task(wf, state, requests[-1], body)
        requests.extend(of_type(more, TaskRequest))
    assert [(r.item, r.idempotency_key) for r in requests] == [
        (0, "ex:poll:1:0"), (1, "ex:poll:1:1"), (2, "ex:poll:1:2")
    ]  # fmt: skip
    assert [r.input["url"] for r in requests] == [
        f"http://jobs.test/j-1?pass={n}" for n in range(3)
    ]
    assert {(r.kind, r.timeout_ms) for r in requests} == {("http", 5000)}
    assert state.status == ExecutionStatus.COMPLETED
    assert state.output["out"]["passes"] == 3
    assert state.output["out"]["output"]["body"] == {"status": "done"}


def test_a_failing_inline_pass_fails_the_node_naming_the_pass() -> None:
    wf = inline_loop_workflow()
    state, sent = started(wf)
    state, more = answer_task(wf, state, of_type(sent, TaskRequest)[0], {"status": "running"})
    boom = NodeError("http.5xx", "503 from jobs.test")
    state, _ = answer_task(wf, state, of_type(more, TaskRequest)[0], error=boom)
    assert state.status == ExecutionStatus.FAILED
    assert state.nodes["poll"].error == NodeError("http.5xx", "pass 1: 503 from jobs.test", "poll")


def test_a_stale_inline_result_is_ignored() -> None:
    wf = inline_loop_workflow()
    state, sent = started(wf)
    first = of_type(sent, TaskRequest)[0]
    state, _ = answer_task(wf, state, first, {"status": "running"})
    stale = NodeCompleted("late", EX, T0 + 99, "poll", 1, {"body": {"status": "done"}}, 0)
    assert assert_ignored(wf, state, stale) == "item 0 of node 'poll' attempt 1 is not running"


def test_an_inline_do_takes_no_input_param() -> None:
    with pytest.raises(DefinitionError) as caught:
        loop_workflow({"do": HTTP_POLL, "count": 2, "max_iterations": 2, "input": {"a": 1}})
    assert any("inline `do`" in p.message for p in caught.value.problems)
