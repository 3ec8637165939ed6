"""Prometheus metrics, all named `braidflow_*`, in the default registry."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from braidflow.engine import LifecycleEvent, StartExecution
from braidflow.engine.state import ExecutionStatus

TASKS_RUN = Counter(
    "braidflow_tasks_run",
    "Task requests an executor ran, by node kind (task, http, unknown) and outcome"
    " (completed, failed).",
    ["kind", "outcome"],
)

TASK_DURATION = Histogram(
    "braidflow_task_duration_seconds",
    "Time from an executor starting a task to its result, by node kind; delivery not included.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

TRANSITIONS = Counter(
    "braidflow_transitions",
    "Transitions the orchestrator consumed, by kind and outcome (applied, ignored).",
    ["kind", "outcome"],
)

STEP_DURATION = Histogram(
    "braidflow_engine_step_seconds",
    "Time the pure engine took for one transition.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05),
)

DEAD_LETTERS = Counter(
    "braidflow_dead_letters",
    "Dead letters written, by kind (record: a record no part of the worker could process;"
    " node: a node that failed its execution, to redrive) and the topic of the record that"
    " led to it.",
    ["kind", "topic"],
)

EXECUTIONS_STARTED = Counter(
    "braidflow_executions_started",
    "Executions started, by workflow id.",
    ["workflow"],
)

EXECUTIONS_ENDED = Counter(
    "braidflow_executions_ended",
    "Executions that ended, by workflow id and status (completed, failed, cancelled);"
    " an execution redriven after it failed counts again when it ends again.",
    ["workflow", "status"],
)

EXECUTION_DURATION = Histogram(
    "braidflow_execution_duration_seconds",
    "Time from an execution's start to its end, by workflow id and status.",
    ["workflow", "status"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400),
)

_ENDED = {
    "workflow.completed": ExecutionStatus.COMPLETED,
    "workflow.failed": ExecutionStatus.FAILED,
    "workflow.cancelled": ExecutionStatus.CANCELLED,
}

_TRANSITION_KINDS = frozenset(
    {"StartExecution", "RunNode", "NodeCompleted", "NodeFailed", "CancelExecution"}
)


def observe_step(transition: object, result: object, seconds: float) -> None:
    """Count one engine step (the orchestrator's `on_step` hook)."""
    kind = type(transition).__name__
    outcome = "ignored" if getattr(result, "ignored", None) else "applied"
    TRANSITIONS.labels(kind if kind in _TRANSITION_KINDS else "other", outcome).inc()
    STEP_DURATION.observe(seconds)
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
        EXECUTIONS_STARTED.labels(state.workflow_id).inc()
    for out in getattr(result, "outgoing", ()):
        if isinstance(out, LifecycleEvent) and out.type in _ENDED:
            status = _ENDED[out.type]
            EXECUTIONS_ENDED.labels(out.workflow_id, status).inc()
            if state is not None:
                seconds = max(0, out.at - state.started_at) / 1000
                EXECUTION_DURATION.labels(out.workflow_id, status).observe(seconds)
