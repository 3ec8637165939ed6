"""The engine on pause and resume: transitions held while paused, then applied in order."""

from __future__ import annotations

from engine_driver import applied, assert_ignored, events, of_type, settle, workflow
from engine_scenarios import BRANCHES, DELAY, EX, HOUR, T0, done, fired, started

from braidflow.engine import CancelExecution, PauseExecution, ResumeExecution, RunNode, step

# -- pause and resume


def test_while_paused_transitions_are_held_and_a_resume_applies_them_in_order() -> None:
    wf = workflow(BRANCHES)
    state, _ = started(wf)
    assert "not paused" in assert_ignored(wf, state, ResumeExecution("r0", EX, T0 + 1))
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
    # The held results are applied in order; the join they fire, and the end after it, run in
    # the same step (no RunNode of their own).
    assert events(resumed.outgoing) == [
        "workflow.resumed",
        "node.completed:a",
        "node.completed:b",
        "node.started:both",
        "node.completed:both",
        "node.started:done",
        "node.completed:done",
        "workflow.completed",
    ]
    assert of_type(resumed.outgoing, RunNode) == []
    assert [c.action for c in resumed.state.control] == ["pause", "resume"]
    assert "already completed" in assert_ignored(
        wf, resumed.state, ResumeExecution("r2", EX, T0 + 6)
    )
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
