"""The `task` node: a handler of the executors runs with the rendered `input`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.work import WorkKind
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Task(WorkKind):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        return draft.render(node, "input", scope=scope)

    def handler(self, node: CompiledNode) -> str | None:
        handler: str | None = node.node.params.get("handler")
        return handler
