"""The `wait_event` node kind. Waits for a CloudEvent of one type (its `correlate` is checked with the graph, in workflow.py)."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.spec import KindSpec

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {
            "type": "string",
            "minLength": 1,
            "description": "the exact CloudEvent type to wait for",
        },
        "correlate": {
            "type": "string",
            "minLength": 1,
            "description": "CEL: whether the arriving `event` belongs to this execution",
        },
        "timeout": {"$ref": "#/$defs/duration"},
    },
}


SPEC = KindSpec(
    "wait_event",
    "wait",
    PARAMS,
    timeout_edges=True,
    error_edges=True,
)
