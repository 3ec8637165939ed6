"""The `loop` node kind. Runs its `do` once per pass, one pass after another.

`do` is a workflow (each pass a child execution) or an inline work node (each pass a task
request), as a foreach's.

`while` (one `${...}` giving a boolean) is checked before every pass after the
first, reading the last pass as `last` (`{output, index}`): the first pass always
runs, since there is no last pass to look at yet. `count` runs exactly that many
passes. `max_iterations` is required and bounds either; a `while` that still holds
after `max_iterations` passes fails the node (`MaxIterations`). `input`, rendered
per pass, reads `last` (null on the first pass) and `index` (the pass, from 0).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.expressions import ExpressionError, parse_template
from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

MAX_ITERATIONS = 10_000
"""The highest `max_iterations` a loop may give: each pass is a child execution."""

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["do", "max_iterations"],
    "additionalProperties": False,
    "description": "exactly one of `while` and `count`",
    "properties": {
        "do": {
            "description": "a workflow id (each pass runs as a child execution) or an inline"
            " work node (rendered per pass)",
            "if": {"type": "string"},
            "then": {"$ref": "#/$defs/workflow_id"},
            "else": {"$ref": "#/$defs/foreach_inline"},
        },
        "while": {
            "type": "string",
            "minLength": 1,
            "description": "one ${...} giving a boolean, checked before every pass after the"
            " first; reads `last` ({output, index}: the pass before)",
        },
        "count": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ITERATIONS,
            "description": "how many passes to run",
        },
        "max_iterations": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ITERATIONS,
            "description": "the most passes the loop may run; past it the node fails",
        },
        "input": {
            "description": "with a workflow `do`: each pass's input; may use ${...}, with"
            " `last` (null on the first pass) and `index` (default: {})"
        },
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    if "retry" in node:
        yield Problem(where, "a loop takes no `retry`; retry the nodes of its `do` workflow")
    given = [key for key in ("while", "count") if key in params]
    if not given:
        yield Problem(where, "params: a loop needs `while` (a ${...} condition) or `count`")
    elif len(given) > 1:
        yield Problem(where, "params: a loop takes `while` or `count`, not both")
    if isinstance(params.get("do"), Mapping) and "input" in params:
        yield Problem(
            where,
            "has `params.input` but an inline `do`; the inline node's params are its input",
        )
    count, limit = params.get("count"), params.get("max_iterations")
    if isinstance(count, int) and isinstance(limit, int) and count > limit:
        yield Problem(where, f"params.count: {count} is more than max_iterations ({limit})")
    condition = params.get("while")
    if isinstance(condition, str) and condition:
        try:
            template = parse_template(condition)
        except ExpressionError:
            return  # reported where the templates are compiled
        if template is None or not template.is_lone:
            yield Problem(where, f"params.while: {condition!r} is not one ${{...}} condition")


SPEC = KindSpec(
    "loop",
    "iteration",
    PARAMS,
    templated=("while", "input"),
    bound_params=frozenset({"while", "input"}),
    bound_names=frozenset({"last", "index"}),
    error_edges=True,
    check=_check,
)
