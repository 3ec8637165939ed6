"""The `join` node: once it fires (the engine counts arrivals), it merges what arrived.

`merge: object` (default) keys outputs by the branch's last node; `merge: array`
keeps edge order with null for a branch that did not arrive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.base import ControlKind, every_edge
from braidflow.engine.state import JoinState
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Join(ControlKind):
    # It runs in the step whose arrival fires it, once the rest of that step is done: its
    # merge and the edges it takes are a pure function of that step's state, and it readies
    # only the nodes after it.
    dispatched_at_once = True
    runs_last = True

    def decide(self, draft: Draft, node: CompiledNode) -> tuple[Any, set[int]]:
        joined = draft.joins.get(node.id, JoinState(node.id))
        arrived = set(joined.taken)
        if node.node.params.get("merge", "object") == "array":
            merged: Any = [
                draft.output_of(e.source) if e.index in arrived else None for e in node.inbound
            ]
        else:
            merged = {
                e.source: draft.output_of(e.source) for e in node.inbound if e.index in arrived
            }
        return merged, every_edge(node)
