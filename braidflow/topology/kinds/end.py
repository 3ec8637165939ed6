"""The `end` node kind. Ends the execution with its rendered `output`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.expressions import ExpressionError, parse_template
from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "output": {
            "type": ["object", "string"],
            "description": "an object, or one ${...} template that gives an "
            "object when the end runs",
        }
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    output = params.get("output")
    if not isinstance(output, str):
        return
    try:
        template = parse_template(output)
    except ExpressionError:
        return  # reported where the templates are compiled
    if template is None or not template.is_lone:
        yield Problem(
            where,
            f"params.output: {output!r} is neither an object nor one ${{...}} template"
            " (the output must be an object)",
        )


SPEC = KindSpec(
    "end",
    "control",
    PARAMS,
    params_required=False,
    templated=("output",),
    check=_check,
)
