"""The `join` node kind. Merges the branches that arrive; fires once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "wait_for": {"oneOf": [{"enum": ["all", "any"]}, {"type": "integer", "minimum": 1}]},
        "merge": {"enum": ["object", "array"]},
        "timeout": {"$ref": "#/$defs/duration"},
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    if "timeout" in node and "timeout" in params:
        yield Problem(where, "has `timeout` and `params.timeout`; give only one")


SPEC = KindSpec(
    "join",
    "control",
    PARAMS,
    params_required=False,
    check=_check,
)
