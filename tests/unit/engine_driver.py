"""Driving the engine step by step in unit tests: compile a workflow, apply transitions,
run the control steps a result asks for, and read what was sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from braidflow.engine import (
    ExecutionState,
    LifecycleEvent,
    Outgoing,
    RunNode,
    StepResult,
    Transition,
    step,
)
from braidflow.topology import Workflow, compile_workflow


def workflow(text: str) -> Workflow:
    return compile_workflow(yaml.safe_load(text))


def events(outgoing: Sequence[Outgoing]) -> list[str]:
    """The lifecycle events sent, as `type` or `type:node`."""
    return [
        f"{o.type}:{o.node_id}" if o.node_id else o.type
        for o in outgoing
        if isinstance(o, LifecycleEvent)
    ]


def of_type(outgoing: Sequence[Outgoing], kind: type) -> list[Any]:
    return [o for o in outgoing if isinstance(o, kind)]


def assert_ignored(wf: Workflow, state: ExecutionState | None, transition: Transition) -> str:
    """`transition` changes nothing and sends nothing now; why the engine ignores it."""
    result = step(wf, state, transition)
    assert result.state == state
    assert result.outgoing == ()
    assert result.ignored is not None
    return result.ignored


def applied(wf: Workflow, state: ExecutionState | None, transition: Transition) -> StepResult:
    """`step`, asserting that the transition was applied, and that applying it again is a no-op."""
    result = step(wf, state, transition)
    assert result.ignored is None, result.ignored
    assert_ignored(wf, result.state, transition)
    return result


def settle(wf: Workflow, result: StepResult) -> tuple[ExecutionState, list[Outgoing]]:
    """Apply the RunNodes `result` sends, and those they send, in order.

    Returns the state and everything sent on the way (including `result`'s own).
    """
    state, sent = result.state, list(result.outgoing)
    pending = of_type(result.outgoing, RunNode)
    while pending:
        result = applied(wf, state, pending.pop(0))
        state = result.state
        sent.extend(result.outgoing)
        pending.extend(of_type(result.outgoing, RunNode))
    assert state is not None
    return state, sent
