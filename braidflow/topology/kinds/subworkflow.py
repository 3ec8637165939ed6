"""The `subworkflow` node kind. Runs another workflow as a child execution."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["workflow"],
    "additionalProperties": False,
    "properties": {
        "workflow": {"$ref": "#/$defs/workflow_id"},
        "input": {"description": "the child's input; may use ${...} (default: {})"},
        "wait": {"type": "boolean", "description": "wait for the child to finish (default: true)"},
        "inherit_context": {
            "type": "boolean",
            "description": "the child reads this execution's "
            "input, vars and event as `parent` "
            "(default: true)",
        },
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    if params.get("wait") is False and "timeout" in node:
        yield Problem(
            where,
            "has `timeout` but `wait: false`; a subworkflow that does not wait never times out",
        )


SPEC = KindSpec(
    "subworkflow",
    "wait",
    PARAMS,
    templated=("input",),
    error_edges=True,
    check=_check,
)
