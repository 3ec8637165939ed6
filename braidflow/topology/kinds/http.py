"""The `http` node kind. An HTTP call the executors make with the rendered request."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.spec import KindSpec

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["method", "url"],
    "additionalProperties": False,
    "properties": {
        "method": {
            "type": "string",
            "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        },
        "url": {"type": "string", "minLength": 1},
        "headers": {"type": ["object", "string"]},
        "query": {"type": ["object", "string"]},
        "body": {},
        "expect_status": {
            "oneOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 100, "maximum": 599},
                    "minItems": 1,
                },
            ]
        },
    },
}


SPEC = KindSpec(
    "http",
    "work",
    PARAMS,
    templated=("url", "headers", "query", "body"),
    error_edges=True,
)
