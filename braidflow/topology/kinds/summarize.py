"""The `summarize` node kind: a model sums a text up, in at most `max_words` words."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.classify import MODEL_PARAMS
from braidflow.topology.kinds.spec import KindSpec

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["connection", "model", "text"],
    "additionalProperties": False,
    "properties": {
        **MODEL_PARAMS,
        "max_words": {"type": "integer", "minimum": 1, "description": "asked of the model"},
        "style": {
            "type": "string",
            "minLength": 1,
            "description": "how to write it, e.g. `bullet points`; may use ${...}",
        },
    },
}


SPEC = KindSpec(
    "summarize",
    "work",
    PARAMS,
    templated=("text", "instructions", "style"),
    error_edges=True,
)
