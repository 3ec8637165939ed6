"""The engine on timers, retries, approvals, subworkflows, failure handling and control."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from engine_driver import applied, assert_ignored, events, of_type, settle, workflow
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scrambled_delivery import Trace, scrambled_run

from braidflow.engine import (
    MAX_SUBWORKFLOW_DEPTH,
    ApprovalDecided,
    CancelExecution,
    ChildFinished,
    ControlAction,
    DeadLetterNode,
    ExecutionState,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    ParentLink,
    PauseExecution,
    RedriveNode,
    ResumeExecution,
    RunNode,
    StartExecution,
    StepResult,
    TaskRequest,
    TimerFired,
    Transition,
    child_execution_id,
    fail_execution,
    fail_start,
    retry_delay_ms,
    step,
)
from braidflow.engine.dry_run import dry_run, parse_answers
from braidflow.engine.state import iso_time
from braidflow.topology import Workflow
from braidflow.topology.model import Retry

EX = "ex"
T0 = 1_750_000_000_000
SECOND = 1_000
HOUR = 3_600_000












def start(wf: Workflow, input_: Any = None, parent: ParentLink | None = None) -> StepResult:
    return applied(wf, None, StartExecution("start", EX, T0, wf.id, 1, input_, None, parent))


def started(wf: Workflow, input_: Any = None) -> tuple[ExecutionState, list[Outgoing]]:
    """Start and run every control step: the execution waits for work, timers or people."""
    return settle(wf, start(wf, input_))


def fired(timer_id: str, at: int) -> TimerFired:
    return TimerFired(f"{EX}/timer/{timer_id}/{at}", EX, at, timer_id)


def done(node_id: str, attempt: int, at: int, output: Any = "ok") -> NodeCompleted:
    return NodeCompleted(f"{EX}:{node_id}:{attempt}/done", EX, at, node_id, attempt, output)


def failed(node_id: str, attempt: int, at: int, type_: str = "E", msg: str = "boom") -> NodeFailed:
    error = NodeError(type_, msg)
    return NodeFailed(f"{EX}:{node_id}:{attempt}/failed", EX, at, node_id, attempt, error)


def decided(choice: str, at: int, data: Any = None, node_id: str = "ask") -> ApprovalDecided:
    return ApprovalDecided(f"{EX}/{node_id}/decided/{choice}/{at}", EX, at, node_id, "d-1", choice,
                           "ada", "fine by me", data)  # fmt: skip


# -- delay


DELAY = """
id: delayed
nodes:
  - {id: nap, type: delay, params: {for: 2h}}
  - {id: done, type: end, params: {output: {nap: "${nodes.nap.output}"}}}
edges:
  - {from: nap, to: done}
"""

UNTIL = """
id: until
nodes:
  - {id: nap, type: delay, params: {until: "${input.when}"}}
  - {id: done, type: end}
edges:
  - {from: nap, to: done}
"""


def test_a_delay_waits_on_a_timer_and_its_firing_carries_on() -> None:
    wf = workflow(DELAY)
    state, sent = started(wf)
    due = T0 + 2 * HOUR
    assert state.nodes["nap"].status == "waiting"
    assert state.timers == {"nap/1/delay": due}
    assert of_type(sent, LifecycleEvent)[-1].data == {"until": iso_time(due)}

    woke = applied(wf, state, fired("nap/1/delay", due))
    assert woke.state is not None
    assert woke.state.nodes["nap"].output == {"waited_until": iso_time(due)}
    assert woke.state.timers == {}
    final, _ = settle(wf, woke)
    assert final.status == "completed"
    assert final.output == {"nap": {"waited_until": iso_time(due)}}


def test_a_delay_until_a_rendered_time_in_the_future_waits_until_then() -> None:
    wf = workflow(UNTIL)
    state, _ = started(wf, {"when": "2025-06-16T14:00:00+02:00"})
    assert state.timers == {"nap/1/delay": 1_750_075_200_000}


def test_a_delay_until_a_time_that_has_passed_ends_at_once() -> None:
    wf = workflow(UNTIL)
    state, sent = started(wf, {"when": "2020-01-01T00:00:00Z"})
    assert state.status == "completed"
    assert state.timers == {}
    assert state.nodes["nap"].output == {"waited_until": "2020-01-01T00:00:00.000Z"}
    assert events(sent)[1:3] == ["node.started:nap", "node.completed:nap"]


@pytest.mark.parametrize("when", ["tomorrow", "2025-06-15T14:00:00", 1_750_000_000, None])
def test_a_delay_until_something_that_is_no_timestamp_fails_with_an_expression_error(
    when: Any,
) -> None:
    wf = workflow(UNTIL)
    state, _ = started(wf, {"when": when})
    nap = state.nodes["nap"]
    assert nap.status == "failed" and nap.error is not None
    assert nap.error.type == "ExpressionError"
    assert state.status == "failed"


# -- attempt timeouts and retries


def retried(
    retry: str = "{max_attempts: 3, backoff: fixed, initial: 10s}", timeout: str = ""
) -> str:
    return f"""
id: retried
nodes:
  - {{id: call, type: task, params: {{handler: h, input: {{n: 1}}}}, retry: {retry}{timeout}}}
  - {{id: done, type: end, params: {{output: {{got: "${{nodes.call.output}}"}}}}}}
edges:
  - {{from: call, to: done}}
"""


def test_backoff_is_fixed_or_doubling_up_to_its_cap() -> None:
    fixed = Retry(max_attempts=5, backoff="fixed", initial_ms=500)
    doubling = Retry(max_attempts=9, backoff="exponential", initial_ms=500, max_ms=3_000)
    assert [retry_delay_ms(fixed, EX, "n", a) for a in (1, 2, 3)] == [500, 500, 500]
    assert [retry_delay_ms(doubling, EX, "n", a) for a in (1, 2, 3, 4, 5)] == [
        500,
        1_000,
        2_000,
        3_000,
        3_000,
    ]


def test_jitter_is_deterministic_and_within_half_to_all_of_the_backoff() -> None:
    jittered = Retry(max_attempts=9, backoff="fixed", initial_ms=10_000, jitter=True)
    delays = [retry_delay_ms(jittered, f"ex-{i}", "n", 1) for i in range(50)]
    assert all(5_000 <= d < 10_000 for d in delays)
    assert len(set(delays)) > 40, "jitter spreads executions apart"
    assert delays == [retry_delay_ms(jittered, f"ex-{i}", "n", 1) for i in range(50)]


def test_an_attempt_timeout_is_a_timer_set_at_dispatch_and_cleared_by_the_result() -> None:
    wf = workflow(retried("{max_attempts: 1}", ", timeout: 5s"))
    state = start(wf).state
    assert state is not None and state.timers == {"call/1/timeout": T0 + 5 * SECOND}
    result = applied(wf, state, done("call", 1, T0 + 10))
    assert result.state is not None and result.state.timers == {}
    assert_ignored(wf, result.state, fired("call/1/timeout", T0 + 5 * SECOND))


def test_an_attempt_that_times_out_fails_and_its_late_result_is_ignored() -> None:
    wf = workflow(retried("{max_attempts: 1}", ", timeout: 5s"))
    state = start(wf).state
    result = applied(wf, state, fired("call/1/timeout", T0 + 5 * SECOND))
    assert result.state is not None and result.state.status == "failed"
    error = result.state.nodes["call"].error
    assert error == NodeError("Timeout", "attempt 1 did not finish within 5000 ms", "call")
    assert assert_ignored(wf, result.state, done("call", 1, T0 + 6 * SECOND)).startswith(
        "execution already"
    )


def test_a_failed_attempt_waits_its_backoff_then_the_next_attempt_is_dispatched() -> None:
    wf = workflow(retried())
    state = start(wf).state
    first = applied(wf, state, failed("call", 1, T0 + 100))
    assert first.state is not None
    call = first.state.nodes["call"]
    assert (call.status, call.attempt) == ("waiting", 1)
    assert call.errors == (NodeError("E", "boom", "call"),)
    assert first.state.timers == {"call/1/retry": T0 + 100 + 10 * SECOND}
    assert events(first.outgoing) == ["node.retrying:call"]
    assert of_type(first.outgoing, LifecycleEvent)[0].data == {
        "next_attempt": 2,
        "retry_at": iso_time(T0 + 100 + 10 * SECOND),
    }
    assert of_type(first.outgoing, TaskRequest) == []

    second = applied(wf, first.state, fired("call/1/retry", T0 + 100 + 10 * SECOND))
    (request,) = of_type(second.outgoing, TaskRequest)
    assert (request.attempt, request.idempotency_key, request.input) == (
        2,
        f"{EX}:call:2",
        {"n": 1},
    )
    assert second.state is not None and second.state.nodes["call"].status == "running"
    assert_ignored(wf, second.state, failed("call", 1, T0 + 20 * SECOND))  # attempt 1 again

    final, _ = settle(wf, applied(wf, second.state, done("call", 2, T0 + 11 * SECOND, "yes")))
    assert final.status == "completed" and final.output == {"got": "yes"}
    call = final.nodes["call"]
    assert (call.attempt, call.error, call.errors) == (2, None, (NodeError("E", "boom", "call"),))


def test_a_timed_out_attempt_is_retried_and_its_late_result_ignored() -> None:
    wf = workflow(retried(timeout=", timeout: 5s"))
    state = start(wf).state
    timed_out = applied(wf, state, fired("call/1/timeout", T0 + 5 * SECOND)).state
    assert timed_out is not None and timed_out.nodes["call"].status == "waiting"
    assert timed_out.nodes["call"].errors[0].type == "Timeout"
    assert "not running" in assert_ignored(wf, timed_out, done("call", 1, T0 + 6 * SECOND))
    again = applied(wf, timed_out, fired("call/1/retry", T0 + 15 * SECOND)).state
    assert again is not None and again.timers == {"call/2/timeout": T0 + 20 * SECOND}


def test_errors_not_named_in_retry_on_fail_at_once() -> None:
    wf = workflow(retried('{max_attempts: 3, "on": [Timeout, http.5xx]}'))
    state = start(wf).state
    result = applied(wf, state, failed("call", 1, T0 + 1, "ValueError"))
    assert result.state is not None and result.state.status == "failed"
    retrying = applied(wf, state, failed("call", 1, T0 + 1, "http.5xx")).state
    assert retrying is not None and retrying.nodes["call"].status == "waiting"


def exhaust(wf: Workflow) -> StepResult:
    """Fail every attempt of `call` (three), waiting out each backoff."""
    state = start(wf).state
    at = T0
    for attempt in (1, 2):
        at += 1
        state = applied(wf, state, failed("call", attempt, at, msg=f"boom {attempt}")).state
        assert state is not None
        ((timer, at),) = state.timers.items()
        state = applied(wf, state, fired(timer, at)).state
    return applied(wf, state, failed("call", 3, at + 1, msg="boom 3"))


def test_a_node_that_exhausts_its_retries_fails_the_execution_and_is_dead_lettered() -> None:
    result = exhaust(workflow(retried()))
    state = result.state
    assert state is not None and state.status == "failed"
    errors = tuple(NodeError("E", f"boom {n}", "call") for n in (1, 2, 3))
    assert state.nodes["call"].errors == errors
    assert state.error == errors[-1]
    (letter,) = of_type(result.outgoing, DeadLetterNode)
    assert letter == DeadLetterNode(
        f"{EX}/call/3/dead-letter",
        EX,
        "retried",
        1,
        "call",
        letter.at,
        {"n": 1},
        errors,
        {"input": None, "vars": {}, "event": None, "workflow_id": "retried", "version": 1},
    )
    assert events(result.outgoing) == [
        "node.failed:call",
        "node.dead_lettered:call",
        "workflow.failed",
    ]
    assert of_type(result.outgoing, LifecycleEvent)[1].data == {"dead_letter_id": letter.id}


def test_a_node_without_retries_that_fails_is_dead_lettered_when_the_execution_fails() -> None:
    wf = workflow(retried("{max_attempts: 1}"))
    result = applied(wf, start(wf).state, failed("call", 1, T0 + 1))
    (letter,) = of_type(result.outgoing, DeadLetterNode)
    assert (letter.id, letter.errors) == (
        f"{EX}/call/1/dead-letter",
        (NodeError("E", "boom", "call"),),
    )
    assert events(result.outgoing) == [
        "node.failed:call",
        "node.dead_lettered:call",
        "workflow.failed",
    ]


# -- settings.timeout and join timeouts


BRANCHES = """
id: branches
settings: {timeout: 1h}
nodes:
  - {id: split, type: parallel}
  - {id: a, type: task, params: {handler: h}}
  - {id: b, type: task, params: {handler: h}}
  - {id: both, type: join, params: {wait_for: all, timeout: 10m}}
  - {id: done, type: end, params: {output: {all: "${nodes.both.output}"}}}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: a, to: both}
  - {from: b, to: both}
  - {from: both, to: done}
"""


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
    assert [r.node_id for r in of_type(timed_out.outgoing, RunNode)] == ["both"]
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


# -- approvals


APPROVAL = """
id: leave
department: people
nodes:
  - id: ask
    type: approval
    params:
      message: "Leave for ${input.who}?"
      choices: [approve, reject, later]
      input: {type: object, required: [days], properties: {days: {type: integer}}}
      on_timeout: ON_TIMEOUT
    timeout: 1d
  - {id: done, type: end, params: {output: {decision: "${nodes.ask.output}"}}}
edges:
  - {from: ask, to: done}
"""


def approval(on_timeout: str = "fail") -> Workflow:
    return workflow(APPROVAL.replace("ON_TIMEOUT", on_timeout))


def test_an_approval_waits_and_announces_what_it_asks() -> None:
    wf = approval()
    state, sent = started(wf, {"who": "ada"})
    ask = state.nodes["ask"]
    assert ask.status == "waiting"
    assert state.timers == {"ask/1/timeout": T0 + 24 * HOUR}
    (announced,) = [o for o in sent if isinstance(o, LifecycleEvent) and o.node_id == "ask"]
    assert announced.type == "node.started"
    assert announced.data == {
        "kind": "approval",
        "message": "Leave for ada?",
        "choices": ["approve", "reject", "later"],
        "department": "people",
        "timeout_at": iso_time(T0 + 24 * HOUR),
    }


def test_a_decision_completes_the_approval_once_and_is_recorded() -> None:
    wf = approval()
    state, _ = started(wf, {"who": "ada"})
    result = applied(wf, state, decided("approve", T0 + 50, {"days": 3}))
    assert result.state is not None
    output = {
        "choice": "approve",
        "by": "ada",
        "comment": "fine by me",
        "data": {"days": 3},
        "decided_at": iso_time(T0 + 50),
        "decision_id": "d-1",
    }
    assert result.state.nodes["ask"].output == output
    assert result.state.control == (ControlAction("approval", "ada", T0 + 50, "ask"),)
    assert result.state.timers == {}
    again = decided("reject", T0 + 60, {"days": 1})
    assert "already decided" in assert_ignored(wf, result.state, again)
    final, _ = settle(wf, result)
    assert final.output == {"decision": output}


@pytest.mark.parametrize(
    ("choice", "data", "reason"),
    [
        ("maybe", {"days": 3}, "is not one of"),
        ("approve", {"days": "three"}, "input schema"),
        ("approve", None, "input schema"),
    ],
)
def test_a_decision_that_breaks_the_choices_or_the_reply_schema_is_ignored(
    choice: str, data: Any, reason: str
) -> None:
    wf = approval()
    state, _ = started(wf, {"who": "ada"})
    assert reason in assert_ignored(wf, state, decided(choice, T0 + 50, data))


def test_a_decision_for_a_node_that_is_no_waiting_approval_is_ignored() -> None:
    wf = approval()
    state = start(wf, {"who": "ada"}).state
    assert state is not None
    assert "not waiting" in assert_ignored(wf, state, decided("approve", T0 + 1, {"days": 1}))
    assert "not an approval" in assert_ignored(
        wf, state, decided("approve", T0 + 1, {"days": 1}, node_id="done")
    )


@pytest.mark.parametrize("on_timeout", ["approve", "reject"])
def test_an_approval_timeout_decides_as_on_timeout_says(on_timeout: str) -> None:
    wf = approval(on_timeout)
    state, _ = started(wf, {"who": "ada"})
    final, _ = settle(wf, applied(wf, state, fired("ask/1/timeout", T0 + 24 * HOUR)))
    assert final.status == "completed"
    assert final.output["decision"]["choice"] == on_timeout
    assert final.output["decision"]["by"] == "timeout"
    assert_ignored(wf, final, decided("approve", T0 + 25 * HOUR, {"days": 1}))


def test_an_approval_timeout_with_on_timeout_fail_fails_the_node() -> None:
    wf = approval("fail")
    state, _ = started(wf, {"who": "ada"})
    result = applied(wf, state, fired("ask/1/timeout", T0 + 24 * HOUR))
    assert result.state is not None and result.state.status == "failed"
    assert result.state.error == NodeError("Timeout", "no decision within 86400000 ms", "ask")


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


CHILD = f"{EX}.call"


def child_done(status: str = "completed", output: Any = None, error: NodeError | None = None,
               child: str = CHILD) -> ChildFinished:  # fmt: skip
    return ChildFinished(f"{child}/finished", EX, T0 + 50, "call", child, status, output, error)


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
    assert result.state.control == (ControlAction("cancel", "bob", T0 + 9, reason="no longer needed"),)


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


# -- pause and resume


def test_while_paused_transitions_are_held_and_a_resume_applies_them_in_order() -> None:
    wf = workflow(BRANCHES)
    state, _ = started(wf)
    paused = applied(wf, state, PauseExecution("p", EX, T0 + 1, "ops"))
    assert paused.state is not None and paused.state.paused
    assert events(paused.outgoing) == ["workflow.paused"]

    held_a = step(wf, paused.state, done("a", 1, T0 + 2, "A"))
    assert held_a.ignored is None and held_a.outgoing == ()
    assert held_a.state is not None and held_a.state.held == (done("a", 1, T0 + 2, "A"),)
    assert "already held" in assert_ignored(wf, held_a.state, done("a", 1, T0 + 2, "A"))
    held_b = step(wf, held_a.state, done("b", 1, T0 + 3, "B"))
    assert held_b.state is not None and len(held_b.state.held) == 2
    assert "already paused" in assert_ignored(wf, held_b.state, PauseExecution("p2", EX, T0 + 4))

    resumed = applied(wf, held_b.state, ResumeExecution("r", EX, T0 + 5, "ops"))
    assert resumed.state is not None
    assert (resumed.state.paused, resumed.state.held) == (False, ())
    assert events(resumed.outgoing) == [
        "workflow.resumed",
        "node.completed:a",
        "node.completed:b",
    ]
    assert [r.node_id for r in of_type(resumed.outgoing, RunNode)] == ["both"]
    assert [c.action for c in resumed.state.control] == ["pause", "resume"]
    assert "not paused" in assert_ignored(wf, resumed.state, ResumeExecution("r2", EX, T0 + 6))
    final, _ = settle(wf, resumed)
    assert final.output == {"all": {"a": "A", "b": "B"}}


def test_a_timer_firing_while_paused_waits_for_the_resume() -> None:
    wf = workflow(DELAY)
    state, _ = started(wf)
    paused = applied(wf, state, PauseExecution("p", EX, T0 + 1)).state
    wake = fired("nap/1/delay", T0 + 2 * HOUR)
    held = step(wf, paused, wake)
    assert held.state is not None and held.state.held == (wake,)
    assert held.state.timers == {"nap/1/delay": T0 + 2 * HOUR}
    resumed = applied(wf, held.state, ResumeExecution("r", EX, T0 + 3 * HOUR))
    assert resumed.state is not None and resumed.state.nodes["nap"].status == "completed"


def test_a_transition_applied_before_the_pause_is_ignored_when_it_comes_again() -> None:
    wf = workflow(BRANCHES)
    state, _ = started(wf)
    state = applied(wf, state, done("a", 1, T0 + 1)).state
    paused = applied(wf, state, PauseExecution("p", EX, T0 + 2)).state
    assert "not running" in assert_ignored(wf, paused, done("a", 1, T0 + 1))


def test_a_cancel_while_paused_ends_the_execution_and_drops_what_was_held() -> None:
    wf = workflow(BRANCHES)
    state, _ = started(wf)
    paused = applied(wf, state, PauseExecution("p", EX, T0 + 1)).state
    held = step(wf, paused, done("a", 1, T0 + 2)).state
    result = applied(wf, held, CancelExecution("c", EX, T0 + 3, by="ops"))
    assert result.state is not None and result.state.status == "cancelled"
    assert (result.state.paused, result.state.held) == (False, ())
    assert [c.action for c in result.state.control] == ["pause", "cancel"]


# -- dry run


def test_a_dry_run_fires_timers_answers_approvals_and_children_and_retries() -> None:
    wf = workflow(
        """
id: everything
nodes:
  - {id: nap, type: delay, params: {for: 1h}}
  - {id: ask, type: approval, params: {message: "ok?"}}
  - {id: call, type: subworkflow, params: {workflow: other}}
  - {id: flaky, type: task, params: {handler: h}, retry: {max_attempts: 2}}
  - {id: done, type: end, params: {output: {ask: "${nodes.ask.output.choice}", call: "${nodes.call.output}"}}}
edges:
  - {from: nap, to: ask}
  - {from: ask, to: call}
  - {from: call, to: flaky}
  - {from: flaky, to: done}
"""
    )
    answers = parse_answers({"ask": {"choice": "approve", "by": "ada"}, "call": {"r": 1}})
    steps = list(dry_run(wf, None, answers))
    state = steps[-1][1].state
    assert state is not None and state.status == "completed"
    assert state.output == {"ask": "approve", "call": {"r": 1}}
    kinds = [type(t).__name__ for t, _ in steps]
    assert {"TimerFired", "ApprovalDecided", "ChildFinished"} <= set(kinds)


def test_a_dry_run_without_a_decision_takes_the_approval_timeout() -> None:
    state = None
    for _, result in dry_run(approval("reject"), {"who": "ada"}, {}):
        state = result.state
    assert state is not None and state.output["decision"]["choice"] == "reject"


def test_a_dry_run_retries_a_failing_node_until_its_attempts_run_out() -> None:
    state = None
    for _, result in dry_run(workflow(retried()), None, parse_answers({"call": {"error": "x"}})):
        state = result.state
    assert state is not None and state.status == "failed"
    assert len(state.nodes["call"].errors) == 3


# -- retries and timeouts racing results, in any delivery order


RACING = """
id: racing
nodes:
  - {id: split, type: parallel}
  - id: a
    type: task
    params: {handler: h}
    timeout: 5s
    retry: {max_attempts: 3, backoff: exponential, initial: 1s, jitter: true}
  - {id: b, type: task, params: {handler: h}, timeout: 5s, retry: {max_attempts: 2}}
  - {id: both, type: join}
  - {id: done, type: end, params: {output: {all: "${nodes.both.output}"}}}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: a, to: both}
  - {from: b, to: both}
  - {from: both, to: done}
"""
def racing_run(wf: Workflow, data: st.DataObject) -> Trace:
    """Every record in a drawn order; each task answered (drawn) and each timer fired.

    An attempt's result and its timeout timer race: whichever is delivered
    first wins. Duplicates and crashes before commit are drawn too.
    """

    def answer_task(request: TaskRequest, clock: int, data: st.DataObject) -> list[Transition]:
        ok = data.draw(st.sampled_from([True, True, False]), label="the attempt succeeds")
        key, node, attempt = request.idempotency_key, request.node_id, request.attempt
        if ok:
            return [NodeCompleted(f"{key}/done", EX, clock, node, attempt, f"{node}{attempt}")]
        return [NodeFailed(f"{key}/failed", EX, clock, node, attempt, NodeError("E", key))]

    def answer_step(
        before: ExecutionState | None, result: StepResult, clock: int, data: st.DataObject
    ) -> list[Transition]:
        if result.state is None:
            return []
        known = before.timers if before is not None else {}
        return [
            fired(timer_id, due)
            for timer_id, due in result.state.timers.items()
            # A timeout may not come due at all: the result came in time.
            if known.get(timer_id) != due
            and (not timer_id.endswith("/timeout") or data.draw(st.booleans()))
        ]

    start = StartExecution("start", EX, T0, wf.id, 1, None)
    return scrambled_run(wf, data, start, answer_task, answer_step, T0)


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_retries_and_timeouts_racing_results_settle_once_in_any_order(data: st.DataObject) -> None:
    wf = workflow(RACING)
    trace = racing_run(wf, data)
    state = trace.state
    assert state is not None and state.finished, state
    assert state.timers == {}
    event(f"status: {state.status}")
    for node_id, max_attempts in (("a", 3), ("b", 2)):
        run = state.nodes[node_id]
        keys = {r.idempotency_key for r in trace.requests if r.node_id == node_id}
        # One request per attempt, never more attempts than allowed.
        assert keys <= {f"{EX}:{node_id}:{n}" for n in range(1, max_attempts + 1)}
        if run.status == "completed":
            assert run.output == f"{node_id}{run.attempt}"
            assert len(run.errors) == run.attempt - 1
        elif run.status == "failed":
            # Out of attempts, or no retry once the other node failed the execution.
            assert len(run.errors) == run.attempt <= max_attempts
    if state.status == "completed":
        assert state.output == {"all": {n: state.nodes[n].output for n in ("a", "b")}}
    else:
        assert state.error is not None
    for transition in trace.applied:
        assert_ignored(wf, state, transition)
