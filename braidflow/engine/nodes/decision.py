"""The `decision` node: the first edge (file order) whose `when` holds, else the default edge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.base import ControlKind, holds
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Decision(ControlKind):
    def decide(self, draft: Draft, node: CompiledNode) -> tuple[Any, set[int]]:
        scope = draft.scope()
        chosen = next((e for e in node.outgoing if e.when and holds(e, scope)), None)
        chosen = chosen or next(e for e in node.outgoing if e.default)
        return None, {chosen.index}
