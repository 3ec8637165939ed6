"""The engine on failures: on_error edges, parking (`settings.on_failure: park`) and redrive."""

from __future__ import annotations

from engine_driver import applied, assert_ignored, events, of_type, settle, workflow
from engine_scenarios import CHILD, EX, HOUR, T0, child_done, done, failed, retried, start, started

from braidflow.engine import (
    CancelExecution,
    ControlAction,
    DeadLetterNode,
    ExecutionState,
    LifecycleEvent,
    NodeError,
    Outgoing,
    PauseExecution,
    RedriveNode,
    StartExecution,
    TaskRequest,
)
from braidflow.topology import Workflow

# -- on_error edges and parking


HANDLED = """
id: handled
nodes:
  - {id: charge, type: task, params: {handler: h}}
  - {id: ship, type: task, params: {handler: h}}
  - {id: refund, type: transform, params: {set: {why: "${nodes.charge.error}"}}}
  - {id: done, type: end, params: {output: {shipped: "${nodes.ship.output}"}}}
  - {id: sorry, type: end, params: {output: {refund: "${nodes.refund.output}"}}}
edges:
  - {from: charge, to: ship}
  - {from: charge, to: refund, on_error: true}
  - {from: ship, to: done}
  - {from: refund, to: sorry}
"""


def test_a_failure_with_an_on_error_edge_goes_along_it_and_the_execution_goes_on() -> None:
    wf = workflow(HANDLED)
    result = applied(wf, start(wf).state, failed("charge", 1, T0 + 1, "CardDeclined", "no"))
    assert result.state is not None and result.state.status == "running"
    assert result.state.error is None
    assert result.state.nodes["charge"].status == "failed"
    assert result.state.nodes["ship"].status == "skipped"
    final, _ = settle(wf, result)
    assert final.status == "completed"
    assert final.output == {"refund": {"why": {"type": "CardDeclined", "message": "no"}}}


def test_a_success_leaves_the_on_error_path_dead() -> None:
    wf = workflow(HANDLED)
    result = applied(wf, start(wf).state, done("charge", 1, T0 + 1))
    assert result.state is not None
    assert result.state.nodes["refund"].status == "skipped"
    assert "sorry" in result.state.nodes


PARKING = """
id: parking
settings: {on_failure: park}
variables: {v: 1}
nodes:
  - {id: split, type: parallel}
  - {id: a, type: task, params: {handler: h, input: {x: "${input.x}"}}}
  - {id: b, type: task, params: {handler: h}}
  - {id: both, type: join}
  - {id: done, type: end, params: {output: {all: "${nodes.both.output}"}}}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: a, to: both}
  - {from: b, to: both}
  - {from: both, to: done}
"""


def parked() -> tuple[Workflow, ExecutionState, list[Outgoing]]:
    """`a` fails while `b` is in flight; `b` finishes; the execution parks."""
    wf = workflow(PARKING)
    state, _ = started(wf, {"x": 7})
    failing = applied(wf, state, failed("a", 1, T0 + 1))
    assert failing.state is not None and failing.state.status == "running"
    drained = applied(wf, failing.state, done("b", 1, T0 + 2, "B"))
    assert drained.state is not None
    return wf, drained.state, [*failing.outgoing, *drained.outgoing]


def test_with_on_failure_park_a_failure_parks_the_execution_and_dead_letters_the_node() -> None:
    _, state, sent = parked()
    assert state.status == "parked"
    assert state.error == NodeError("E", "boom", "a")
    assert not state.finished
    (letter,) = of_type(sent, DeadLetterNode)
    assert (letter.node_id, letter.input, letter.errors) == ("a", {"x": 7}, (state.error,))
    assert letter.context == {
        "input": {"x": 7},
        "vars": {"v": 1},
        "event": None,
        "workflow_id": "parking",
        "version": 1,
    }
    assert events(sent) == [
        "node.failed:a",
        "node.dead_lettered:a",
        "node.completed:b",
        "workflow.parked",
    ]


def test_a_parked_execution_takes_only_a_redrive_or_a_cancel() -> None:
    wf, state, _ = parked()
    assert "parked" in assert_ignored(wf, state, PauseExecution("p", EX, T0 + 3))
    assert "parked" in assert_ignored(wf, state, done("a", 1, T0 + 3))
    cancelled = applied(wf, state, CancelExecution("c", EX, T0 + 4)).state
    assert cancelled is not None and cancelled.status == "cancelled"


# -- redrive


def test_a_redrive_takes_up_a_parked_execution_where_it_stopped() -> None:
    wf, state, _ = parked()
    redrive = RedriveNode("r", EX, T0 + 10, "a", "ops", {"x": 8})
    result = applied(wf, state, redrive)
    assert result.state is not None
    assert (result.state.status, result.state.error, result.state.completed_at) == (
        "running",
        None,
        None,
    )
    (request,) = of_type(result.outgoing, TaskRequest)
    assert (request.attempt, request.idempotency_key, request.input) == (2, f"{EX}:a:2", {"x": 8})
    assert result.state.control == (ControlAction("redrive", "ops", T0 + 10, "a"),)
    assert events(result.outgoing) == ["node.redriven:a", "node.started:a"]
    # `b` finished while the execution drained: its arrival at the join is recorded now.
    b_edge = next(e.index for e in wf.nodes["both"].inbound if e.source == "b")
    assert result.state.joins["both"].taken == (b_edge,)

    final, _ = settle(wf, applied(wf, result.state, done("a", 2, T0 + 11, "A")))
    assert final.status == "completed"
    assert final.output == {"all": {"a": "A", "b": "B"}}
    assert final.nodes["a"].errors == (NodeError("E", "boom", "a"),)


def test_a_redrive_of_a_node_that_has_not_failed_or_of_a_completed_execution_is_ignored() -> None:
    wf, state, _ = parked()
    assert "has not failed" in assert_ignored(wf, state, RedriveNode("r", EX, T0 + 10, "b"))
    assert "unknown node" in assert_ignored(wf, state, RedriveNode("r", EX, T0 + 10, "zz"))
    again = applied(wf, state, RedriveNode("r", EX, T0 + 10, "a")).state
    assert "has not failed" in assert_ignored(wf, again, RedriveNode("r2", EX, T0 + 11, "a"))
    final, _ = settle(wf, applied(wf, again, done("a", 2, T0 + 12)))
    assert assert_ignored(wf, final, RedriveNode("r3", EX, T0 + 13, "a")) == (
        "execution already completed"
    )


def test_a_failed_execution_can_be_redriven_and_its_workflow_events_stay_unique() -> None:
    wf = workflow(retried("{max_attempts: 1}"))
    first = applied(wf, start(wf).state, failed("call", 1, T0 + 1))
    assert first.state is not None and first.state.status == "failed"
    redriven = applied(wf, first.state, RedriveNode("r", EX, T0 + 2, "call"))
    again = applied(wf, redriven.state, failed("call", 2, T0 + 3))
    assert again.state is not None and again.state.status == "failed"
    ids = [o.id for o in [*first.outgoing, *again.outgoing] if isinstance(o, LifecycleEvent)]
    assert len(ids) == len(set(ids))
    (request,) = of_type(redriven.outgoing, TaskRequest)
    assert request.input == {"n": 1}, "the recorded input when none is given"


def test_a_redrive_runs_the_siblings_fail_fast_cancelled_again() -> None:
    wf = workflow(PARKING.replace("type: parallel}", "type: parallel, params: {fail_fast: true}}"))
    state, _ = started(wf, {"x": 1})
    stopped = applied(wf, state, failed("a", 1, T0 + 1)).state
    assert stopped is not None and stopped.status == "parked"
    assert stopped.nodes["b"].status == "cancelled"
    result = applied(wf, stopped, RedriveNode("r", EX, T0 + 2, "a"))
    assert sorted((r.node_id, r.attempt) for r in of_type(result.outgoing, TaskRequest)) == [
        ("a", 2),
        ("b", 2),
    ]
    state = applied(wf, result.state, done("a", 2, T0 + 3, "A")).state
    final, _ = settle(wf, applied(wf, state, done("b", 2, T0 + 4, "B")))
    assert final.output == {"all": {"a": "A", "b": "B"}}


WAITS_BESIDE = """
id: beside
settings: {on_failure: park}
nodes:
  - {id: split, type: parallel}
  - {id: bad, type: task, params: {handler: h}}
  - {id: wait, type: wait_event, params: {type: x.y}, timeout: 1h}
  - {id: call, type: subworkflow, params: {workflow: other}}
  - {id: ask, type: approval, params: {message: "ok?"}}
  - {id: all, type: join}
  - {id: done, type: end}
edges:
  - {from: split, to: bad}
  - {from: split, to: wait}
  - {from: split, to: call}
  - {from: split, to: ask}
  - {from: bad, to: all}
  - {from: wait, to: all}
  - {from: call, to: all}
  - {from: ask, to: all}
  - {from: all, to: done}
"""


def test_a_redrive_starts_the_waits_the_stop_cancelled_again_with_a_new_child() -> None:
    wf = workflow(WAITS_BESIDE)
    state, _ = started(wf)
    stopped = applied(wf, state, failed("bad", 1, T0 + 1))
    assert stopped.state is not None and stopped.state.status == "parked"
    assert [c.execution_id for c in of_type(stopped.outgoing, CancelExecution)] == [CHILD]
    result = applied(wf, stopped.state, RedriveNode("r", EX, T0 + 2, "bad"))
    assert result.state is not None
    runs = {n: (r.status, r.attempt) for n, r in result.state.nodes.items() if n != "split"}
    assert runs == {n: ("waiting", 2) for n in ("wait", "call", "ask")} | {"bad": ("running", 2)}
    assert result.state.children == {"call": f"{CHILD}.2"}
    assert result.state.timers == {"wait/2/timeout": T0 + 2 + HOUR}
    assert [s.execution_id for s in of_type(result.outgoing, StartExecution)] == [f"{CHILD}.2"]
    assert "not waiting for child" in assert_ignored(wf, result.state, child_done("cancelled"))


def test_a_patched_input_is_refused_for_a_node_that_takes_none() -> None:
    wf = workflow(
        """
id: shaped
nodes:
  - {id: shape, type: transform, params: {set: {x: "${input.x.y}"}}}
  - {id: done, type: end}
edges:
  - {from: shape, to: done}
"""
    )
    state, _ = started(wf, {"x": 1})
    assert state.status == "failed"
    assert "takes no patched input" in assert_ignored(
        wf, state, RedriveNode("r", EX, T0 + 1, "shape", input={"x": 2})
    )


def test_a_redriven_http_node_sends_the_patched_request() -> None:
    wf = workflow(
        """
id: web
settings: {on_failure: park}
nodes:
  - {id: get, type: http, params: {method: GET, url: "http://127.0.0.1:1/x"}}
  - {id: done, type: end}
edges:
  - {from: get, to: done}
"""
    )
    state = applied(wf, start(wf).state, failed("get", 1, T0 + 1)).state
    patched = {"method": "GET", "url": "http://127.0.0.1:1/y", "headers": {}, "query": {},
               "body": None, "expect_status": None}  # fmt: skip
    result = applied(wf, state, RedriveNode("r", EX, T0 + 2, "get", input=patched))
    (request,) = of_type(result.outgoing, TaskRequest)
    assert request.input == patched
