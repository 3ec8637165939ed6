"""The `approval` node kind. Waits for a person's decision."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.spec import KindSpec, schema_problem
from braidflow.topology.loading import Problem
from braidflow.topology.model import DEFAULT_CHOICES

PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "message": {"type": "string", "description": "what the approver reads; may use ${...}"},
        "choices": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1},
            "description": "the answers offered (default: approve, reject)",
        },
        "input": {
            "type": "object",
            "description": "JSON Schema (2020-12) for the `data` of a reply",
        },
        "approvers": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1},
            "description": "who may decide: role names (viewer, operator, editor, owner:"
            " that role or a higher one) or principal names (a key's name, a token's subject);"
            " default: anyone with the operator role",
        },
        "on_timeout": {
            "enum": ["approve", "reject", "fail"],
            "description": "what the node's timeout decides (default: fail)",
        },
    },
}


# Outcomes of an approval's timeout that pick one of its choices.
_CHOOSING_TIMEOUTS = frozenset({"approve", "reject"})


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    choices = params.get("choices", list(DEFAULT_CHOICES))
    on_timeout = params.get("on_timeout")
    # Choices the JSON Schema refused (none, or not all text) are reported there alone.
    readable = isinstance(choices, list) and all(c and isinstance(c, str) for c in choices)
    if on_timeout in _CHOOSING_TIMEOUTS and readable and choices and on_timeout not in choices:
        offered = ", ".join(choices)
        yield Problem(
            where, f"params.on_timeout: {on_timeout!r} is not among the choices ({offered})"
        )
    if "on_timeout" in params and "timeout" not in node:
        yield Problem(where, "has `params.on_timeout` but no `timeout`")
    reply_schema = params.get("input")
    if isinstance(reply_schema, Mapping) and (problem := schema_problem(reply_schema)):
        yield Problem(where, f"params.input: {problem}")


SPEC = KindSpec(
    "approval",
    "wait",
    PARAMS,
    params_required=False,
    templated=("message",),
    error_edges=True,
    check=_check,
)
