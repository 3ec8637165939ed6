"""The `email` node: an executor sends the rendered message through the node's connection.

The request names the connection; the executor finds the server and its login, so neither
is ever in the execution's state or the task request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.connected import ConnectedKind
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft

_RENDERED = ("from", "to", "cc", "subject", "text", "html")


class Email(ConnectedKind):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        params = node.node.params
        request: dict[str, Any] = {"connection": params["connection"]}
        request.update(
            (name, draft.render(node, name, scope=scope)) for name in _RENDERED if name in params
        )
        return request
