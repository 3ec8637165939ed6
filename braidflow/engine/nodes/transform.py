"""The `transform` node: its output is its rendered `set`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.base import ControlKind, normal_edges
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Transform(ControlKind):
    def decide(self, draft: Draft, node: CompiledNode) -> tuple[Any, set[int]]:
        return draft.render(node, "set", {}), normal_edges(node)
