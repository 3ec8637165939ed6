"""The engine on deadlines: an execution's `settings.timeout`, a failure from outside, and join
timeouts."""

from __future__ import annotations

from engine_driver import applied, events, of_type, settle, workflow
from engine_scenarios import BRANCHES, EX, HOUR, T0, done, fired, start, started

from braidflow.engine import (
    ChildFinished,
    NodeError,
    ParentLink,
    RunNode,
    StartExecution,
    fail_execution,
    fail_start,
)

# -- settings.timeout and join timeouts


def test_the_execution_deadline_fails_it_and_cancels_work_in_flight() -> None:
    wf = workflow(BRANCHES)
    state, _ = started(wf)
    assert state.timers["execution/timeout"] == T0 + HOUR
    result = applied(wf, state, fired("execution/timeout", T0 + HOUR))
    assert result.state is not None and result.state.status == "failed"
    assert result.state.error == NodeError(
        "Timeout", "the execution did not finish within 3600000 ms"
    )
    assert {result.state.nodes[n].status for n in ("a", "b")} == {"cancelled"}
    assert result.state.timers == {}
    assert events(result.outgoing) == ["workflow.failed"]


def test_failing_an_execution_from_outside_cancels_its_work_and_tells_its_parent() -> None:
    wf = workflow(BRANCHES)
    parent = ParentLink("dad", "caller", "call", 1)
    state, _ = settle(wf, start(wf, parent=parent))
    error = NodeError("StateTooLarge", "the state would be 2,000,000 bytes")
    result = fail_execution(wf, state, error, T0 + 5)
    assert result.ignored is None and result.state is not None
    assert result.state.status == "failed" and result.state.error == error
    assert {result.state.nodes[n].status for n in ("a", "b")} == {"cancelled"}
    assert result.state.timers == {} and result.state.completed_at == T0 + 5
    assert events(result.outgoing) == ["workflow.failed"]
    [notice] = of_type(result.outgoing, ChildFinished)
    assert (notice.execution_id, notice.status, notice.error) == ("dad", "failed", error)
    again = fail_execution(wf, result.state, error, T0 + 6)
    assert again.ignored == "execution already failed" and again.outgoing == ()


def test_a_start_failed_from_outside_keeps_neither_input_nor_event_and_tells_its_parent() -> None:
    wf = workflow(BRANCHES)
    parent = ParentLink("dad", "caller", "call", 1)
    begin = StartExecution("start", EX, T0, wf.id, 1, {"blob": "x"}, {"id": "ev"}, parent)
    error = NodeError("StateTooLarge", "the state would be 2,000,000 bytes")
    result = fail_start(wf, begin, error)
    assert result.state is not None and result.state.status == "failed"
    assert (result.state.input, result.state.event, result.state.error) == (None, None, error)
    assert result.state.nodes == {} and result.state.parent == parent
    assert events(result.outgoing) == ["workflow.failed"]
    [notice] = of_type(result.outgoing, ChildFinished)
    assert (notice.execution_id, notice.status) == ("dad", "failed")


def test_a_finished_execution_holds_no_timers() -> None:
    wf = workflow(BRANCHES)
    state, _ = started(wf)
    state = applied(wf, state, done("a", 1, T0 + 1)).state
    final, _ = settle(wf, applied(wf, state, done("b", 1, T0 + 2)))
    assert final.status == "completed" and final.timers == {}


def test_a_join_timeout_starts_at_the_first_arrival_and_fires_the_join_with_what_arrived() -> None:
    wf = workflow(BRANCHES)
    state, _ = started(wf)
    assert "both/join-timeout" not in state.timers
    state = applied(wf, state, done("a", 1, T0 + 5, "A")).state
    assert state is not None and state.timers["both/join-timeout"] == T0 + 5 + 600_000

    timed_out = applied(wf, state, fired("both/join-timeout", T0 + 600_005))
    # The timeout fires the join in its own step, with what arrived.
    assert of_type(timed_out.outgoing, RunNode) == []
    assert timed_out.state is not None
    assert timed_out.state.nodes["both"].output == {"a": "A"}
    final, _ = settle(wf, timed_out)
    assert final.status == "completed" and final.output == {"all": {"a": "A"}}


def test_a_join_that_fires_in_time_clears_its_timer() -> None:
    wf = workflow(BRANCHES)
    state, _ = started(wf)
    state = applied(wf, state, done("a", 1, T0 + 5)).state
    state = applied(wf, state, done("b", 1, T0 + 6)).state
    assert state is not None and "both/join-timeout" not in state.timers


def test_a_join_timeout_with_no_branch_arrived_fails_the_join() -> None:
    wf = workflow(
        """
id: dead
nodes:
  - {id: check, type: task, params: {handler: h}}
  - {id: pick, type: decision}
  - {id: slow, type: task, params: {handler: h}}
  - {id: never, type: task, params: {handler: h}}
  - {id: either, type: join, params: {timeout: 1m}}
  - {id: done, type: end}
edges:
  - {from: check, to: pick}
  - {from: pick, to: never, when: "false"}
  - {from: pick, to: slow, default: true}
  - {from: slow, to: either}
  - {from: never, to: either}
  - {from: either, to: done}
"""
    )
    state = start(wf).state
    state, _ = settle(wf, applied(wf, state, done("check", 1, T0 + 1)))
    assert state.joins["either"].dead and state.timers == {"either/join-timeout": T0 + 1 + 60_000}
    result = applied(wf, state, fired("either/join-timeout", T0 + 60_001))
    assert result.state is not None
    assert result.state.nodes["either"].error == NodeError(
        "Timeout", "no branch arrived within 60000 ms", "either"
    )
    assert result.state.status == "running"  # `slow` still drains
    final = applied(wf, result.state, done("slow", 1, T0 + 60_002)).state
    assert final is not None and final.status == "failed"
