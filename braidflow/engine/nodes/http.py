"""The `http` node: an executor makes the rendered request.

The request is rendered for the executor (`topology.secret_references`): `${secrets.NAME}`
stays a reference the executor resolves at the moment of the call, and every other `$` is
doubled, so the engine, the state and the task request never hold a secret's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.nodes.work import WorkKind
from braidflow.topology.secret_references import escape_dollars, referenced
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Http(WorkKind):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        return {
            "method": node.node.params["method"],
            "url": rendered_for_executor(node, "url", None, scope),
            "headers": rendered_for_executor(node, "headers", {}, scope),
            "query": rendered_for_executor(node, "query", {}, scope),
            "body": rendered_for_executor(node, "body", None, scope),
            "expect_status": node.node.params.get("expect_status"),
        }

    def patch_problem(self, node: CompiledNode, given: Any) -> str | None:
        # A patched request is in the executor's form, references included: it may keep the
        # node's own secrets, never reach for others (an operator must not gain a credential).
        named = frozenset().union(*(t.secrets() for t in node.params.values()))
        extra = sorted(referenced(given) - named)
        if extra:
            return (
                f"a patched input of node {node.id!r} names secrets its definition does not:"
                f" {', '.join(extra)}"
            )
        return super().patch_problem(node, given)


def rendered_for_executor(
    node: CompiledNode, param: str, default: Any, scope: Mapping[str, Any]
) -> Any:
    """A param rendered for an executor: secret references kept, every other `$` doubled."""
    template = node.params.get(param)
    if template is None:
        return escape_dollars(node.node.params.get(param, default))
    return template.render_request(scope)
