"""The `summarize` node: an executor asks the node's connection to sum a text up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.classify import model_request
from braidflow.engine.nodes.llm import Llm
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Summarize(Llm):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        request = model_request(draft, node, scope, ("text", "instructions", "style"))
        if "max_words" in node.node.params:
            request["max_words"] = node.node.params["max_words"]
        return request
