"""The `parallel` node: every edge whose `when` holds (every edge without one) is taken."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.base import ControlKind, holds
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Parallel(ControlKind):
    def decide(self, draft: Draft, node: CompiledNode) -> tuple[Any, set[int]]:
        scope = draft.scope()
        return None, {e.index for e in node.outgoing if e.when is None or holds(e, scope)}
