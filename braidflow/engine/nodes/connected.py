"""What the work kinds that call through a named connection share (`llm` and the model kinds,
`email`): the request names the connection, and the executor finds its endpoint and
credential in the worker's connections file, so neither is in the state or the request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from braidflow.engine.nodes.work import WorkKind
from braidflow.topology.workflow import CompiledNode


class ConnectedKind(WorkKind):
    def patch_problem(self, node: CompiledNode, given: Any) -> str | None:
        # The connection is the credential: a redrive may change what is sent, not whose key
        # or login sends it (an operator must not gain a credential), as an http node keeps
        # its secrets.
        own = node.node.params["connection"]
        if not isinstance(given, Mapping) or given.get("connection") != own:
            return f"a patched input of node {node.id!r} must keep its connection, {own!r}"
        return super().patch_problem(node, given)
