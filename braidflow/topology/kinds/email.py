"""The `email` node kind. An executor sends a message through a mail server (SMTP) that the
worker's connections file names, so a definition holds neither the server nor its login."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.llm import CONNECTION_NAME
from braidflow.topology.kinds.spec import KindSpec

_ADDRESSES: dict[str, Any] = {
    "oneOf": [
        {
            "type": "string",
            "minLength": 1,
            "description": "an address, or several, comma-separated",
        },
        {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
    ],
    "description": "addresses (`Ada <ada@example.com>` or `ada@example.com`); may use ${...}",
}

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["connection", "from", "to", "subject", "text"],
    "additionalProperties": False,
    "properties": {
        "connection": {
            "type": "string",
            "pattern": CONNECTION_NAME,
            "description": "the mail server and its login, named in the worker's connections file",
        },
        "from": {"type": "string", "minLength": 1, "description": "the sender; may use ${...}"},
        "to": _ADDRESSES,
        "cc": _ADDRESSES,
        "subject": {"type": "string", "description": "may use ${...}"},
        "text": {"type": "string", "description": "the plain-text body; may use ${...}"},
        "html": {"type": "string", "description": "an HTML alternative of the body; ${...}"},
    },
}

SPEC = KindSpec(
    "email",
    "work",
    PARAMS,
    templated=("from", "to", "cc", "subject", "text", "html"),
    error_edges=True,
)
