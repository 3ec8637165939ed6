"""The engine on attempts: timeouts, retries with backoff, retries run out, and results racing
timeouts and retries in any delivery order."""

from __future__ import annotations

from engine_driver import applied, assert_ignored, events, of_type, settle, workflow
from engine_scenarios import EX, SECOND, T0, done, failed, fired, retried, start
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scrambled_delivery import Trace, scrambled_run

from braidflow.engine import (
    DeadLetterNode,
    ExecutionState,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    StartExecution,
    StepResult,
    TaskRequest,
    Transition,
    retry_delay_ms,
)
from braidflow.engine.state import iso_time
from braidflow.topology import Workflow
from braidflow.topology.model import Retry

# -- attempt timeouts and retries


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
