"""The dry run: timers fired, approvals answered, children finished and retries run, in process."""

from __future__ import annotations

from engine_driver import workflow
from engine_scenarios import approval, retried

from braidflow.engine.dry_run import dry_run, parse_answers

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
