"""The `code` node kind. User-supplied Python, `main(input)`, run by the executors in a sandbox.

The limits a node may set, their defaults and their bounds live here, once: the JSON Schema
refuses a definition past them, the engine puts the limits in force into the task request,
and the executor checks a request's limits against them again before it runs anything (a
request is a record anyone who can write the tasks topic could have written).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

MAX_SOURCE_CHARS = 64 * 1024
"""Source longer than this is refused: it travels in every task request of the node."""

# name: (default, least, most). Python itself takes some 20 MB of address space to start.
NUMERIC_LIMITS: Mapping[str, tuple[int, int, int]] = {
    "cpu_ms": (1_000, 10, 60_000),
    "memory_mb": (256, 64, 2_048),
    "wall_ms": (10_000, 100, 300_000),
}
DEFAULT_LIMITS: Mapping[str, Any] = {
    **{name: default for name, (default, _, _) in NUMERIC_LIMITS.items()},
    "network": False,
}

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["source"],
    "additionalProperties": False,
    "properties": {
        "source": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_SOURCE_CHARS,
            "description": "Python (standard library only) defining `main(input)`, which"
            " returns JSON; not templated",
        },
        "input": {"description": "what `main` receives; may use ${...} (default: null)"},
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{
                    name: {
                        "type": "integer",
                        "minimum": least,
                        "maximum": most,
                        "description": f"default {default}",
                    }
                    for name, (default, least, most) in NUMERIC_LIMITS.items()
                },
                "network": {
                    "type": "boolean",
                    "description": "share the worker's network (default: false, none at all)",
                },
            },
        },
    },
}


def limits_in_force(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The node's `limits` with the defaults filled in."""
    return {**DEFAULT_LIMITS, **(given or {})}


def limits_problem(limits: Any) -> str | None:
    """Why `limits` (as a task request carries them: all four set) cannot be run, or None."""
    if not isinstance(limits, Mapping) or set(limits) != set(DEFAULT_LIMITS):
        return f"limits must set exactly {', '.join(sorted(DEFAULT_LIMITS))}: {limits!r}"
    for name, (_, least, most) in NUMERIC_LIMITS.items():
        value = limits[name]
        if type(value) is not int or not least <= value <= most:
            return f"limits.{name} must be an integer from {least} to {most}, not {value!r}"
    if type(limits["network"]) is not bool:
        return f"limits.network must be true or false, not {limits['network']!r}"
    return None


def source_problem(source: str) -> str | None:
    """Why `source` cannot run as a code node's (a syntax error, no `main`), or None."""
    try:
        module = ast.parse(source, "<source>")
    except (SyntaxError, ValueError) as exc:
        where = f" at line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        return f"is not valid Python{where}: {getattr(exc, 'msg', None) or exc}"
    for statement in module.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "main":
            return None
        if isinstance(statement, ast.AsyncFunctionDef) and statement.name == "main":
            return "defines `async def main`; it must be a plain `def main(input)`"
    return "defines no top-level `def main(input)`"


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    source = params.get("source")
    if isinstance(source, str) and source:
        problem = source_problem(source)
        if problem is not None:
            yield Problem(where, f"params.source {problem}")


SPEC = KindSpec(
    "code",
    "work",
    PARAMS,
    templated=("input",),
    error_edges=True,
    check=_check,
)
