"""Counting engine steps and executions into the metrics of `braidflow.metrics`."""

from __future__ import annotations

import functools

from braidflow.engine import LifecycleEvent, StartExecution
from braidflow.engine.state import ExecutionStatus
from braidflow.loop_metrics import Count
from braidflow.metrics import (
    EXECUTION_DURATION,
    EXECUTIONS_ENDED,
    EXECUTIONS_STARTED,
    STEP_DURATION,
    TRANSITIONS,
)

_ENDED = {
    "workflow.completed": ExecutionStatus.COMPLETED,
    "workflow.failed": ExecutionStatus.FAILED,
    "workflow.cancelled": ExecutionStatus.CANCELLED,
}

# TimerFired: a timer fired again after it was applied shows as an ignored one.
_TRANSITION_KINDS = frozenset(
    {"StartExecution", "RunNode", "NodeCompleted", "NodeFailed", "CancelExecution", "TimerFired"}
)

# The counter of each (transition class, outcome): `labels` makes its key of the values'
# strings on every call, once per step (docs/performance-history.md,
# "The orchestrator's own CPU per step").
_COUNTED: dict[tuple[type, str], Count] = {}
# The same for each workflow's (and status's) start, end and duration, at every start and end.
_started = functools.cache(EXECUTIONS_STARTED.labels)
_ended = functools.cache(EXECUTIONS_ENDED.labels)
_took = functools.cache(EXECUTION_DURATION.labels)
_step_took = STEP_DURATION.labels()


def observe_step(transition: object, result: object, seconds: float) -> None:
    """Count one engine step (the orchestrator's `on_step` hook)."""
    outcome = "ignored" if getattr(result, "ignored", None) else "applied"
    counter = _COUNTED.get((type(transition), outcome))
    if counter is None:
        kind = type(transition).__name__
        counter = TRANSITIONS.labels(kind if kind in _TRANSITION_KINDS else "other", outcome)
        _COUNTED[(type(transition), outcome)] = counter
    counter.inc()
    _step_took.observe(seconds)
    observe_executions(transition, result)


def observe_executions(transition: object, result: object) -> None:
    """Count an execution's start (an applied StartExecution, even one that fails at once)
    and its end (the step's `workflow.completed|failed|cancelled` lifecycle event).

    A transition delivered again is ignored by the engine and emits nothing, so
    each start and each end is counted once.
    """
    if getattr(result, "ignored", None):
        return
    state = getattr(result, "state", None)
    if isinstance(transition, StartExecution) and state is not None:
        _started(state.workflow_id).inc()
    for out in getattr(result, "outgoing", ()):
        if isinstance(out, LifecycleEvent) and out.type in _ENDED:
            status = _ENDED[out.type]
            _ended(out.workflow_id, status).inc()
            if state is not None:
                seconds = max(0, out.at - state.started_at) / 1000
                _took(out.workflow_id, status).observe(seconds)
