"""The `task` node kind. A task: a handler of the executors runs it with its rendered `input`."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.spec import KindSpec

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["handler"],
    "additionalProperties": False,
    "properties": {"handler": {"type": "string", "minLength": 1}, "input": {}},
}


SPEC = KindSpec(
    "task",
    "work",
    PARAMS,
    templated=("input",),
    error_edges=True,
)
