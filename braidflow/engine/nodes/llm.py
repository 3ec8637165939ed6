"""The `llm` node: an executor asks the node's connection for a chat completion.

The request names the connection; the executor finds its endpoint and key, so neither is
ever in the execution's state or the task request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.connected import ConnectedKind
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft

# Sent as the definition gives them; absent ones are left to the endpoint's (or the client's)
# defaults.
_PLAIN = ("temperature", "max_tokens", "tools", "max_tool_rounds", "stream")


class Llm(ConnectedKind):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        params = node.node.params
        request = {
            "connection": params["connection"],
            "model": params["model"],
            "prompt": draft.render(node, "prompt", scope=scope),
            "system": draft.render(node, "system", scope=scope),
            "output": params.get("output", "text"),
        }
        request.update((name, params[name]) for name in _PLAIN if name in params)
        return request
