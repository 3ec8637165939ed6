"""The `llm` node kind. A chat completion an executor asks of an OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.spec import KindSpec, schema_problem
from braidflow.topology.loading import Problem

CONNECTION_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
"""What a connection's name may be (the keys of the worker's connections file)."""

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["connection", "model", "prompt"],
    "additionalProperties": False,
    "properties": {
        "connection": {
            "type": "string",
            "pattern": CONNECTION_NAME,
            "description": "the endpoint and its key, named in the worker's connections file",
        },
        "model": {"type": "string", "minLength": 1},
        "prompt": {"type": "string", "minLength": 1, "description": "the user message; ${...}"},
        "system": {"type": "string", "description": "the system message; may use ${...}"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
        "output": {
            "oneOf": [
                {"enum": ["text", "json"]},
                {"type": "object", "description": "JSON Schema (2020-12) the answer must satisfy"},
            ],
            "description": "text (default), json, or a JSON Schema the answer must satisfy",
        },
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    output = params.get("output")
    if isinstance(output, Mapping) and (problem := schema_problem(output)):
        yield Problem(where, f"params.output: {problem}")


SPEC = KindSpec(
    "llm",
    "work",
    PARAMS,
    templated=("prompt", "system"),
    error_edges=True,
    check=_check,
)
