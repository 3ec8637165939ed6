"""The `publish` node kind. Publishes a CloudEvent on the event bus."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.spec import KindSpec

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "minLength": 1},
        "data": {},
        "subject": {"type": "string"},
    },
}


SPEC = KindSpec(
    "publish",
    "control",
    PARAMS,
    templated=("type", "data", "subject"),
)
