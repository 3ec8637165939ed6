"""The JSON shapes the API answers with: an execution, a workflow; openapi.py describes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from braidflow.connectors.api.backend import Deployed
from braidflow.connectors.api.node_inputs import node_input
from braidflow.connectors.started_by import started_by
from braidflow.engine import ExecutionState, NodeError
from braidflow.engine.cost import execution_cost
from braidflow.engine.state import NodeStatus, iso_time
from braidflow.engine.trace_context import execution_trace
from braidflow.topology import Workflow


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_time(ms)


def _error(error: NodeError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "node_id": error.node_id}


def execution_view(state: ExecutionState, workflow: Workflow) -> dict[str, Any]:
    """The JSON shape of `GET /executions/{id}`.

    `progress.completed_nodes` counts nodes that are done: completed, or skipped
    because a decision did not take their path. A foreach node with items in
    flight shows how far its items are (`items`).
    """
    nodes = []
    for run in state.nodes.values():
        progress = state.foreach.get(run.node_id)
        duration = (
            run.completed_at - run.started_at
            if run.completed_at is not None and run.started_at is not None
            else None
        )
        nodes.append(
            {
                "node_id": run.node_id,
                "status": run.status,
                "attempt": run.attempt,
                "started_at": _iso(run.started_at),
                "completed_at": _iso(run.completed_at),
                "duration_ms": duration,
                "input": node_input(state, workflow, run),
                "output": run.output,
                "error": _error(run.error),
                "errors": [_error(e) for e in run.errors],
                "items": None
                if progress is None
                else {
                    "total": progress.total,
                    "done": progress.next - len(progress.running),
                    "running": len(progress.running),
                    "failed": progress.failed,
                },
            }
        )
    trace = execution_trace(state)
    done = sum(
        1
        for run in state.nodes.values()
        if run.status in (NodeStatus.COMPLETED, NodeStatus.SKIPPED)
    )
    return {
        "execution_id": state.execution_id,
        "workflow_id": state.workflow_id,
        "workflow_version": state.workflow_version,
        "status": state.status,
        "input": state.input,
        "output": state.output,
        "error": _error(state.error),
        "started_at": _iso(state.started_at),
        "completed_at": _iso(state.completed_at),
        "progress": {"total_nodes": len(workflow.nodes), "completed_nodes": done},
        "cost": execution_cost(state.nodes.values(), workflow),
        "paused": state.paused,
        "held": len(state.held),
        "held_transitions": [
            {"kind": type(t).__name__, "id": t.id, "node_id": getattr(t, "node_id", None)}
            for t in state.held
        ],
        "started_by": started_by(state),
        "trace_id": trace.trace_id,
        "traceparent": trace.header,
        "parent": None
        if state.parent is None
        else {
            "execution_id": state.parent.execution_id,
            "workflow_id": state.parent.workflow_id,
            "node_id": state.parent.node_id,
            "depth": state.parent.depth,
            "item": state.parent.item,
        },
        "children": dict(state.children),
        "control": [
            {
                "action": c.action,
                "by": c.by,
                "at": _iso(c.at),
                "node_id": c.node_id,
                "reason": c.reason or None,
            }
            for c in state.control
        ],
        "nodes": nodes,
        "joins": [
            {"node_id": j.node_id, "arrived": len(j.taken), "dead": len(j.dead), "fired": j.fired}
            for j in state.joins.values()
        ],
    }


def not_started_view(summary: Mapping[str, Any], workflow: Workflow | None) -> dict[str, Any]:
    """The shape of `execution_view` for an execution known only from the execution index:
    accepted and not started yet, or refused at its start (failed, with the reason)."""
    error = summary.get("error")
    return {
        **summary,
        "input": None,
        "output": None,
        "error": None if error is None else {**error, "node_id": None},
        "progress": {
            "total_nodes": None if workflow is None else len(workflow.nodes),
            "completed_nodes": 0,
        },
        "cost": execution_cost((), workflow),
        "paused": False,
        "held": 0,
        "held_transitions": [],
        # What started it is in its start, which the orchestrator has not read yet.
        "started_by": None,
        "trace_id": None,
        "traceparent": None,
        "parent": None,
        "children": {},
        "control": [],
        "nodes": [],
        "joins": [],
    }


def workflow_summary(d: Deployed) -> dict[str, Any]:
    """A workflow as `GET /workflows` lists it: its latest version."""
    return {
        "id": d.workflow_id,
        "version": d.version,
        "name": d.workflow.definition.name,
        "deployed_at": _iso(d.deployed_at),
    }
