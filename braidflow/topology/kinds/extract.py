"""The `extract` node kind: a model reads the fields a JSON Schema describes out of a text."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.classify import MODEL_PARAMS
from braidflow.topology.kinds.spec import KindSpec, schema_problem
from braidflow.topology.loading import Problem

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["connection", "model", "text", "schema"],
    "additionalProperties": False,
    "properties": {
        **MODEL_PARAMS,
        "schema": {
            "type": "object",
            "description": "the JSON Schema (2020-12) of the fields: an object schema",
        },
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    schema = params.get("schema")
    if not isinstance(schema, Mapping):
        return
    if problem := schema_problem(schema):
        yield Problem(where, f"params.schema: {problem}")
    elif schema.get("type") != "object":
        # The fields are an object: endpoints' structured output wants one at the root.
        yield Problem(where, 'params.schema: the fields\' schema needs "type": "object"')


SPEC = KindSpec(
    "extract",
    "work",
    PARAMS,
    templated=("text", "instructions"),
    error_edges=True,
    check=_check,
)
