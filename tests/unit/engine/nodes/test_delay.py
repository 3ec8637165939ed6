"""The engine on delay nodes: a timer for a duration, or until a rendered time."""

from __future__ import annotations

from typing import Any

import pytest
from engine_driver import applied, events, of_type, settle, workflow
from engine_scenarios import DELAY, HOUR, T0, fired, start, started

from braidflow.engine import LifecycleEvent, RunNode
from braidflow.engine.state import iso_time

# -- delay


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


def test_a_delay_that_becomes_ready_sets_its_timer_in_that_step_without_a_run_node() -> None:
    # A parked execution is one step, not the start and then a RunNode round trip.
    first = start(workflow(DELAY))
    assert first.state is not None
    assert first.state.timers == {"nap/1/delay": T0 + 2 * HOUR}
    assert first.state.nodes["nap"].status == "waiting"
    assert of_type(first.outgoing, RunNode) == []
    assert events(first.outgoing) == ["workflow.started", "node.started:nap"]


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
