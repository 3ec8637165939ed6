"""What an execution used, added up from its node runs: model tokens and money, http calls,
run times, attempts and retries (docs/llm.md, "Cost"; docs/departments.md, "Budgets").

Derived from the state, never stored beside it: a node run's output already holds its model
call's `usage`, `model` and `cost` (priced by the executor, which knows the connection's
prices), and the run its attempt and times. So the sum needs no schema of its own, is the
same on every replay, and an execution stored before costs were counted shows its cost too.
What it cannot see: the tokens of an attempt that failed (a failure carries no output), the
times of attempts before the last, and what a foreach's items or a child execution used (a
child's cost is on the child).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from braidflow.engine.state import NodeRun
from braidflow.topology.kinds import WORK_TYPES
from braidflow.topology.workflow import Workflow

PRICED_KINDS = frozenset({"llm", "classify", "extract", "summarize"})
"""The kinds whose output may carry a model call's `usage` and `cost`."""

HTTP_KINDS = frozenset({"http", "fetch_page"})
"""The kinds whose every attempt is one HTTP call."""

_TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")


def spent(runs: Iterable[NodeRun]) -> float:
    """The money the runs' model calls cost (their outputs' `cost`)."""
    total = 0.0
    for run in runs:
        output = run.output
        if isinstance(output, Mapping):
            cost = output.get("cost")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                total += cost
    return round(total, 9)


def execution_cost(runs: Iterable[NodeRun], workflow: Workflow | None) -> dict[str, Any]:
    """The JSON shape of an execution's `cost`: money and tokens by model, and of its work
    nodes' runs, http calls, milliseconds by node kind, attempts and retries (`workflow`
    names their kinds)."""
    runs = list(runs)
    tokens: dict[str, dict[str, int]] = {}
    run_ms: dict[str, int] = {}
    http_calls = attempts = retries = 0
    for run in runs:
        compiled = workflow.nodes.get(run.node_id) if workflow is not None else None
        kind = compiled.node.type if compiled is not None else "unknown"
        output = run.output
        if isinstance(output, Mapping) and isinstance(output.get("usage"), Mapping):
            model = output.get("model")
            counted = tokens.setdefault(model if isinstance(model, str) else "unknown", {})
            usage = output["usage"]
            for name in _TOKENS:
                value = usage.get(name)
                if type(value) is int:
                    counted[name] = counted.get(name, 0) + value
        if kind not in WORK_TYPES:
            # Control nodes take no time; waits take people's and events' time, not work.
            continue
        if run.started_at is not None and run.completed_at is not None:
            run_ms[kind] = run_ms.get(kind, 0) + run.completed_at - run.started_at
        if run.attempt > 0:
            attempts += run.attempt
            retries += run.attempt - 1
            if kind in HTTP_KINDS:
                http_calls += run.attempt
    return {
        "money": spent(runs),
        "tokens": tokens,
        "http_calls": http_calls,
        "run_ms": run_ms,
        "attempts": attempts,
        "retries": retries,
    }
