"""Prometheus metrics, all named `braidflow_*`, in the default registry.

Only their definitions, so that every layer may count into them: the streams count tasks
and dead letters, `connectors.metrics` counts engine steps and executions. Counters and
histograms are counted on the event loop's thread, without prometheus_client's locks
(`loop_metrics`).
"""

from __future__ import annotations

from prometheus_client import Gauge, Info

from braidflow.loop_metrics import LoopCounter, LoopHistogram

WORKER = Info(
    "braidflow_worker",
    "How this worker runs: its event loop (uvloop, asyncio) and whether its hot modules are"
    " compiled (compiled, pure; docs/install.md).",
)

TASKS_RUN = LoopCounter(
    "braidflow_tasks_run",
    "Task requests an executor ran, by node kind (task, http, unknown) and outcome"
    " (completed, failed).",
    ["kind", "outcome"],
)

TASKS_HANDED_OVER = LoopCounter(
    "braidflow_tasks_handed_over",
    "Task requests an executor took straight from its own worker's orchestrator, without"
    " waiting to read them from the tasks topic.",
)

TRANSITIONS_HANDED_OVER = LoopCounter(
    "braidflow_transitions_handed_over",
    "Transitions the orchestrator took from its own worker's sends once acknowledged, without"
    " waiting to read them back from the transitions topic.",
)

TASK_DURATION = LoopHistogram(
    "braidflow_task_duration_seconds",
    "Time from an executor starting a task to its result, by node kind; delivery not included.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

TRANSITIONS = LoopCounter(
    "braidflow_transitions",
    "Transitions the orchestrator consumed, by kind and outcome (applied, ignored).",
    ["kind", "outcome"],
)

STEP_DURATION = LoopHistogram(
    "braidflow_engine_step_seconds",
    "Time the pure engine took for one transition.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05),
)

TIMER_SCANS = LoopCounter(
    "braidflow_timer_scans",
    "Scans of the timers table for due timers; about one a second while none is due.",
)

DEAD_LETTERS = LoopCounter(
    "braidflow_dead_letters",
    "Dead letters written, by kind (record: a record no part of the worker could process;"
    " node: a node that failed its execution, to redrive) and the topic of the record that"
    " led to it.",
    ["kind", "topic"],
)

EXECUTIONS_STARTED = LoopCounter(
    "braidflow_executions_started",
    "Executions started, by workflow id.",
    ["workflow"],
)

EXECUTIONS_ENDED = LoopCounter(
    "braidflow_executions_ended",
    "Executions that ended, by workflow id and status (completed, failed, cancelled);"
    " an execution redriven after it failed counts again when it ends again.",
    ["workflow", "status"],
)

EXECUTION_DURATION = LoopHistogram(
    "braidflow_execution_duration_seconds",
    "Time from an execution's start to its end, by workflow id and status.",
    ["workflow", "status"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400),
)

DEPARTMENT_ALERT_WEBHOOKS = LoopCounter(
    "braidflow_department_alert_webhooks",
    "Department alerts POSTed to a webhook, by department and outcome (delivered; given_up:"
    " refused every attempt).",
    ["department", "outcome"],
)

STATS_EXECUTIONS = LoopCounter(
    "braidflow_stats_executions",
    "What the stats counted of executions, by tenant, workflow, department ('' for none) and"
    " event (started, completed, failed, cancelled, timed_out, retries, dead_letters,"
    " sla_breached); counted by the worker that holds the workflow's figures (docs/analytics.md).",
    ["tenant", "workflow", "department", "event"],
)

STATS_NODE_RUNS = LoopCounter(
    "braidflow_stats_node_runs",
    "What the stats counted of node attempts, by tenant, workflow, node and event (started,"
    " completed, failed, timed_out, retries, dead_letters).",
    ["tenant", "workflow", "node", "event"],
)

STATS_DURATION = Gauge(
    "braidflow_stats_duration_ms",
    "Duration quantiles (p50, p95, p99) over the minute of the latest event, in ms, of a workflow's"
    " executions (node '') and of each of its nodes' attempts, from the stats' sketches.",
    ["tenant", "workflow", "node", "quantile"],
)
