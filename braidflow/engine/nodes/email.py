"""The `email` node: an executor sends the rendered message through the node's connection.

The request names the connection; the executor finds the server and its login, so neither
is ever in the execution's state or the task request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.work import WorkKind
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft

_RENDERED = ("from", "to", "cc", "subject", "text", "html")


class Email(WorkKind):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        params = node.node.params
        request: dict[str, Any] = {"connection": params["connection"]}
        request.update(
            (name, draft.render(node, name, scope=scope)) for name in _RENDERED if name in params
        )
        return request

    def patch_problem(self, node: CompiledNode, given: Any) -> str | None:
        # The connection is the credential: a redrive may change the message, not whose
        # login sends it (an operator must not gain a credential), as for an llm node.
        own = node.node.params["connection"]
        if not isinstance(given, Mapping) or given.get("connection") != own:
            return f"a patched input of node {node.id!r} must keep its connection, {own!r}"
        return super().patch_problem(node, given)
