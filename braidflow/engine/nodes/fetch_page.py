"""The `fetch_page` node: an executor GETs the rendered URL and picks the selected fields.

As for an `http` node, `${secrets.NAME}` in the URL or headers stays a reference the executor
resolves at the moment of the call, so no secret's value is in the state or the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.http import rendered_for_executor
from braidflow.engine.nodes.work import WorkKind
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class FetchPage(WorkKind):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        return {
            "url": rendered_for_executor(node, "url", None, scope),
            "headers": rendered_for_executor(node, "headers", {}, scope),
            "select": node.node.params["select"],
        }
