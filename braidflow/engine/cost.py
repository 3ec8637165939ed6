"""What an execution used, added up from its node runs: model tokens and money, http calls,
run times, attempts and retries (docs/llm.md, "Cost"; docs/departments.md, "Budgets").

Derived from the state, never stored beside it: a node run's output already holds its model
call's `usage`, `model` and `cost` (priced by the executor, which knows the connection's
prices), and the run its attempt and times. So the sum needs no schema of its own, is the
same on every replay, and an execution stored before costs were counted shows its cost too.
What it cannot see: the tokens of an attempt that failed (a failure carries no output), the
times of attempts before the last, the run times and attempts of a foreach's items (their model
calls are counted, from the foreach's results, once it completes), and what a child execution
used (a child's cost is on the child). Only the priced kinds' outputs count: any other node's
`cost` or `usage` is its author's data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from braidflow.engine.state import NodeRun
from braidflow.topology.kinds import WORK_TYPES
from braidflow.topology.model import Node
from braidflow.topology.workflow import Workflow

PRICED_KINDS = frozenset({"llm", "classify", "extract", "summarize"})
"""The kinds whose output may carry a model call's `usage` and `cost`."""

HTTP_KINDS = frozenset({"http", "fetch_page"})
"""The kinds whose every attempt is one HTTP call."""

_TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")


def calls_models(node: Node) -> bool:
    """Whether a run of `node` may hold model calls' outputs (`model_calls`)."""
    if node.type in PRICED_KINDS:
        return True
    do = node.params.get("do") if node.type == "foreach" else None
    return isinstance(do, Mapping) and do.get("type") in PRICED_KINDS


def model_calls(node: Node | None, output: Any) -> list[Mapping[str, Any]]:
    """The model calls' outputs in a run of `node` that produced `output`: its own for a
    priced kind, each item's result for a foreach whose inline `do` is one. Other nodes' outputs
    are their authors' data: a task's `cost` or `usage` is an order's, not a model's."""
    if node is None or not calls_models(node):
        return []
    if node.type in PRICED_KINDS:
        return [output] if isinstance(output, Mapping) else []
    # With continue_on_error the results are under `results`; a failed item has none.
    results = output.get("results") if isinstance(output, Mapping) else output
    if not isinstance(results, list):
        return []
    return [result for result in results if isinstance(result, Mapping)]


def spent(runs: Iterable[NodeRun], workflow: Workflow | None) -> float:
    """The money the runs' model calls cost (their outputs' `cost`)."""
    total = 0.0
    for run in runs:
        for call in model_calls(_node(workflow, run.node_id), run.output):
            cost = call.get("cost")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                total += cost
    return round(total, 9)


def _node(workflow: Workflow | None, node_id: str) -> Node | None:
    compiled = workflow.nodes.get(node_id) if workflow is not None else None
    return compiled.node if compiled is not None else None


def execution_cost(runs: Iterable[NodeRun], workflow: Workflow | None) -> dict[str, Any]:
    """The JSON shape of an execution's `cost`: money and tokens by model, and of its work
    nodes' runs, http calls, milliseconds by node kind, attempts and retries (`workflow`
    names their kinds)."""
    runs = list(runs)
    tokens: dict[str, dict[str, int]] = {}
    run_ms: dict[str, int] = {}
    http_calls = attempts = retries = 0
    for run in runs:
        node = _node(workflow, run.node_id)
        kind = node.type if node is not None else "unknown"
        for call in model_calls(node, run.output):
            usage = call.get("usage")
            if not isinstance(usage, Mapping):
                continue
            model = call.get("model")
            counted = tokens.setdefault(model if isinstance(model, str) else "unknown", {})
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
        "money": spent(runs, workflow),
        "tokens": tokens,
        "http_calls": http_calls,
        "run_ms": run_ms,
        "attempts": attempts,
        "retries": retries,
    }
