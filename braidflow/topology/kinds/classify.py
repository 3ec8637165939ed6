"""The `classify` node kind: a model picks one of the node's labels for a text; the label may
choose the edge the execution goes on along (an edge's `label`, topology/edge_labels.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.llm import CALL_PARAMS
from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

MODEL_PARAMS: dict[str, Any] = {
    **CALL_PARAMS,
    "text": {"type": "string", "minLength": 1, "description": "the text; may use ${...}"},
    "instructions": {"type": "string", "description": "more for the model; may use ${...}"},
}
"""The params every model kind of the agent library shares with an `llm` node's."""

_LABEL = {"type": "string", "minLength": 1}

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["connection", "model", "text", "labels"],
    "additionalProperties": False,
    "properties": {
        **MODEL_PARAMS,
        "labels": {
            "oneOf": [
                {"type": "array", "items": _LABEL, "minItems": 2, "uniqueItems": True},
                {
                    "type": "object",
                    "minProperties": 2,
                    "propertyNames": _LABEL,
                    "additionalProperties": {"type": "string"},
                },
            ],
            "description": "the labels to choose from: a list, or label -> what it means",
        },
    },
}


def labels_of(params: Mapping[str, Any]) -> tuple[str, ...]:
    """A classify node's labels in the order written; none when the schema refused them."""
    labels = params.get("labels")
    if isinstance(labels, list | Mapping):
        return tuple(label for label in labels if isinstance(label, str))
    return ()


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    # JSON Schema's uniqueItems says only "has non-unique elements"; name the label.
    labels = params.get("labels")
    if isinstance(labels, list):
        repeated = sorted({label for label in labels if labels.count(label) > 1}, key=str)
        if repeated:
            yield Problem(where, f"params.labels: {repeated[0]!r} is given twice")


SPEC = KindSpec(
    "classify",
    "work",
    PARAMS,
    templated=("text", "instructions"),
    error_edges=True,
    check=_check,
)
