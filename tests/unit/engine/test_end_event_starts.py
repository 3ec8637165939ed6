"""An end event carries when what ended started (`LifecycleEvent.started_at`), from the state
the engine already has, so a reader of the lifecycle topic (the stats) times it without
remembering starts: node attempts, retries, the execution; none where no start is timed."""

from __future__ import annotations

from engine_driver import applied, settle, workflow
from engine_scenarios import EX, T0, done, failed, fired, retried, started

from braidflow.engine import LifecycleEvent, Outgoing, ParentLink, RedriveNode, StartExecution

CHAIN = """
id: chain
nodes:
  - {id: a, type: task, params: {handler: h}}
  - {id: pick, type: transform, params: {set: {x: 1}}}
  - {id: done, type: end}
edges:
  - {from: a, to: pick}
  - {from: pick, to: done}
"""


def starts(sent: list[Outgoing]) -> dict[str, int | None]:
    """`type` or `type:node` of each lifecycle event to the start it carries."""
    return {
        f"{o.type}:{o.node_id}" if o.node_id else o.type: o.started_at
        for o in sent
        if isinstance(o, LifecycleEvent)
    }


def test_the_ends_of_nodes_and_of_the_execution_carry_their_starts() -> None:
    wf = workflow(CHAIN)
    state, sent = started(wf)
    ended, more = settle(wf, applied(wf, state, done("a", 1, T0 + 40)))
    assert ended.status == "completed"
    said = starts([*sent, *more])
    assert said["node.started:a"] is None and said["workflow.started"] is None
    assert said["node.completed:a"] == T0
    # A control node starts and ends in one step, at the time of its RunNode.
    pick_started = ended.nodes["pick"].started_at
    assert pick_started is not None and said["node.completed:pick"] == pick_started
    assert said["workflow.completed"] == T0


def test_each_attempt_is_timed_from_its_own_start() -> None:
    wf = workflow(retried(retry="{max_attempts: 2, backoff: fixed, initial: 10s}"))
    state, _ = started(wf)
    retrying = applied(wf, state, failed("call", 1, T0 + 5))
    assert retrying.state is not None
    again = applied(wf, retrying.state, fired("call/1/retry", T0 + 10_005))
    assert again.state is not None
    last = applied(wf, again.state, failed("call", 2, T0 + 10_100))
    assert starts(list(retrying.outgoing))["node.retrying:call"] == T0
    said = starts(list(last.outgoing))
    assert said["node.failed:call"] == T0 + 10_005
    assert said["workflow.failed"] == T0


def test_an_end_with_no_timed_start_carries_none() -> None:
    wf = workflow(CHAIN)
    # A start that never ran: refused at once (a call nested too deep).
    deep = ParentLink("p", "parent", "call", 99)
    too_deep = applied(wf, None, StartExecution("start", EX, T0, wf.id, 1, None, None, deep))
    assert starts(list(too_deep.outgoing)) == {"workflow.failed": None}
    # Redriven after it failed: its new end is not timed from its first start.
    state, _ = started(wf)
    failing = applied(wf, state, failed("a", 1, T0 + 5))
    assert failing.state is not None and failing.state.status == "failed"
    assert starts(list(failing.outgoing))["workflow.failed"] == T0
    redriven = applied(wf, failing.state, RedriveNode("r", EX, T0 + 60_000, "a", "ops"))
    assert redriven.state is not None
    ended, more = settle(wf, applied(wf, redriven.state, done("a", 2, T0 + 60_040)))
    assert ended.status == "completed"
    said = starts([*redriven.outgoing, *more])
    assert said["node.completed:a"] == T0 + 60_000
    assert said["workflow.completed"] is None


def test_a_parked_execution_redriven_is_timed_from_its_start() -> None:
    wf = workflow(CHAIN.replace("id: chain", "id: chain\nsettings: {on_failure: park}"))
    state, _ = started(wf)
    parked = applied(wf, state, failed("a", 1, T0 + 5))
    assert parked.state is not None and parked.state.status == "parked"
    redriven = applied(wf, parked.state, RedriveNode("r", EX, T0 + 60_000, "a", "ops"))
    assert redriven.state is not None
    _, more = settle(wf, applied(wf, redriven.state, done("a", 2, T0 + 60_040)))
    assert starts(more)["workflow.completed"] == T0
