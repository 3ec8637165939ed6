"""What each node run of an execution view took in: its input.

The state keeps the input of the kinds that send work or wait (a task's or http call's
resolved request input, a foreach's items, a child's input, an approval's message and
choices, a wait's event type or time). A control node (transform, decision, publish, join,
end) is decided in one step and keeps none: the state row stays bounded, and its input is
derived here, at read time and purely, as its params rendered against the node runs that had
ended when it started (the ones it could have read).
"""

from __future__ import annotations

from typing import Any

from braidflow.engine import ExecutionState
from braidflow.engine.nodes import NODE_KINDS
from braidflow.engine.nodes.base import ControlKind
from braidflow.engine.state import NodeRun
from braidflow.engine.step import scope_of
from braidflow.topology import Workflow
from braidflow.topology.expressions import ExpressionError


def node_input(state: ExecutionState, workflow: Workflow, run: NodeRun) -> Any:
    """The input of `run`: the one its state keeps, else a control node's rendered params
    (None when it has none, or when they no longer render)."""
    if run.input is not None or run.started_at is None:
        return run.input
    node = workflow.nodes.get(run.node_id)
    if node is None or not isinstance(NODE_KINDS[node.type], ControlKind) or not node.node.params:
        return None
    started = run.started_at
    before = {
        node_id: ended
        for node_id, ended in state.nodes.items()
        if node_id != run.node_id
        and ended.completed_at is not None
        and ended.completed_at <= started
    }
    scope = scope_of(workflow, state, before)
    try:
        return {
            name: node.params[name].render(scope) if name in node.params else value
            for name, value in node.node.params.items()
        }
    except ExpressionError:
        return None
