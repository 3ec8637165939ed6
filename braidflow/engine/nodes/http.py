"""The `http` node: an executor makes the rendered request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.work import WorkKind
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Http(WorkKind):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        return {
            "method": node.node.params["method"],
            "url": draft.render(node, "url", scope=scope),
            "headers": draft.render(node, "headers", {}, scope),
            "query": draft.render(node, "query", {}, scope),
            "body": draft.render(node, "body", scope=scope),
            "expect_status": node.node.params.get("expect_status"),
        }
