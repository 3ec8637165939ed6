"""The `extract` node: an executor asks the node's connection for the fields its schema
describes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.classify import model_request
from braidflow.engine.nodes.llm import Llm
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Extract(Llm):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        request = model_request(draft, node, scope, ("text", "instructions"))
        request["schema"] = node.node.params["schema"]
        return request
