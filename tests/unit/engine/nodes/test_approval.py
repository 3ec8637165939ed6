"""The engine on approval nodes: waiting, decisions, bad replies and timeouts."""

from __future__ import annotations

from typing import Any

import pytest
from engine_driver import applied, assert_ignored, settle, workflow
from engine_scenarios import HOUR, T0, approval, decided, fired, start, started

from braidflow.engine import ControlAction, LifecycleEvent, NodeError
from braidflow.engine.state import iso_time

# A control step after the approval: the execution still runs once it is decided.
APPROVAL_THEN_NOTE = """
id: leave_noted
nodes:
  - {id: ask, type: approval, params: {message: "Leave?"}}
  - {id: note, type: transform, params: {set: {noted: true}}}
  - {id: done, type: end}
edges:
  - {from: ask, to: note}
  - {from: note, to: done}
"""

# -- approvals


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
    # The end runs in the decision's step.
    assert result.state.status == "completed"
    assert result.state.output == {"decision": output}
    again = decided("reject", T0 + 60, {"days": 1})
    assert assert_ignored(wf, result.state, again) == "execution already completed"


def test_a_second_decision_is_ignored_while_the_execution_runs_on() -> None:
    wf = workflow(APPROVAL_THEN_NOTE)
    state, _ = started(wf)
    result = applied(wf, state, decided("approve", T0 + 50))
    assert result.state is not None and result.state.status == "running"
    again = decided("reject", T0 + 60)
    assert "already decided" in assert_ignored(wf, result.state, again)
    final, _ = settle(wf, result)
    assert final.nodes["ask"].output["choice"] == "approve"
    assert final.status == "completed"


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
