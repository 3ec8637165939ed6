"""The `foreach` node kind. Runs its `do` once per item of a list."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["items", "do"],
    "additionalProperties": False,
    "properties": {
        "items": {
            "type": ["array", "string"],
            "description": "the list to run over, usually a ${...} template that gives one",
        },
        "do": {
            "description": "a workflow id (each item runs as a child execution) "
            "or an inline work node (rendered per item)",
            "if": {"type": "string"},
            "then": {"$ref": "#/$defs/workflow_id"},
            "else": {"$ref": "#/$defs/foreach_inline"},
        },
        "input": {
            "description": "with a workflow `do`: each child's input; may "
            "use ${...}, with `item` and `index` (default: "
            "the item)"
        },
        "concurrency": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "description": "items in flight at once (default: 10)",
        },
        "continue_on_error": {
            "type": "boolean",
            "description": "a failed item is recorded in the "
            "output instead of failing the node "
            "(default: false)",
        },
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    items = params.get("items")
    if isinstance(items, str) and "${" not in items:
        yield Problem(where, f"params.items: {items!r} is neither a list nor a ${{...}} template")
    if isinstance(params.get("do"), Mapping) and "input" in params:
        yield Problem(
            where,
            "has `params.input` but an inline `do`; the inline node's params are its input",
        )


SPEC = KindSpec(
    "foreach",
    "iteration",
    PARAMS,
    templated=("items", "input"),
    bound_params=frozenset({"input"}),
    bound_names=frozenset({"index", "item"}),
    error_edges=True,
    check=_check,
)
