"""The `classify` node: an executor asks the node's connection for one of its labels; the
label chosen picks the edge on when the node's edges name labels (topology/edge_labels.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.messages import NodeError
from braidflow.engine.nodes.base import normal_edges
from braidflow.engine.nodes.llm import Llm
from braidflow.topology.kinds.classify import labels_of
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft

# Sent as the definition gives them; absent ones are left to the endpoint's defaults.
_PLAIN = ("temperature", "max_tokens")


def model_request(
    draft: Draft, node: CompiledNode, scope: Mapping[str, Any], templated: tuple[str, ...]
) -> dict[str, Any]:
    """What an executor needs for a model kind of the agent library: the connection, the
    model, the `templated` params rendered and the plain ones as the definition gives them."""
    params = node.node.params
    request: dict[str, Any] = {"connection": params["connection"], "model": params["model"]}
    request.update(
        (name, draft.render(node, name, scope=scope)) for name in templated if name in params
    )
    request.update((name, params[name]) for name in _PLAIN if name in params)
    return request


class Classify(Llm):
    def request_input(self, draft: Draft, node: CompiledNode, scope: Mapping[str, Any]) -> Any:
        request = model_request(draft, node, scope, ("text", "instructions"))
        request["labels"] = node.node.params["labels"]
        return request

    def output_problem(self, node: CompiledNode, output: Any) -> NodeError | None:
        # The executor asks for the label by an enum; an output from anywhere else may not be.
        label = output.get("label") if isinstance(output, Mapping) else None
        labels = labels_of(node.node.params)
        if label in labels:
            return None
        return NodeError(
            "classify.unknown_label",
            f"the label {label!r} is not one of {', '.join(labels)}",
            node.id,
        )

    def edges_taken(self, node: CompiledNode, output: Any) -> set[int]:
        ways_on = [e for e in node.outgoing if not e.timeout and not e.on_error]
        if not any(e.label is not None for e in ways_on):
            return normal_edges(node)
        label = output["label"]
        chosen = next((e for e in ways_on if e.label == label), None)
        chosen = chosen or next(e for e in ways_on if e.default)
        return {chosen.index}
