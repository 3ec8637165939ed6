"""The `transform` node kind. Shapes data: its output is its rendered `set`."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.spec import KindSpec

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["set"],
    "additionalProperties": False,
    "properties": {"set": {"type": "object"}},
}


SPEC = KindSpec(
    "transform",
    "control",
    PARAMS,
    templated=("set",),
    error_edges=True,
)
