"""The `code` node: an executor runs the node's Python in a sandbox with the rendered `input`.

The request holds the source and the limits in force as well as the input, so an executor
needs nothing but the request; a redrive may patch the input, never the source or the limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.work import WorkKind
from braidflow.topology.kinds.code import limits_in_force
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Code(WorkKind):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        params = node.node.params
        return {
            "source": params["source"],
            "input": draft.render(node, "input", scope=scope),
            "limits": limits_in_force(params.get("limits")),
        }

    def patch_problem(self, node: CompiledNode, given: Any) -> str | None:
        params = node.node.params
        own = {"source": params["source"], "limits": limits_in_force(params.get("limits"))}
        if not isinstance(given, Mapping) or set(given) != {"source", "input", "limits"}:
            return f"a patched input of code node {node.id!r} must be {{source, input, limits}}"
        if {"source": given["source"], "limits": given["limits"]} != own:
            return (
                f"a patched input of code node {node.id!r} may change its `input` only,"
                " not its source or limits"
            )
        return super().patch_problem(node, given)
