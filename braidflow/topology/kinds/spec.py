"""What the topology knows of one node kind: its params, its templates, the edges it may leave by."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from braidflow.topology.loading import Problem

ParamsCheck = Callable[[Mapping[str, Any], Mapping[str, Any], str], Iterator[Problem]]
"""`check(node, params, where)`: the problems of a node's params a JSON Schema cannot express.

A check skips what the JSON Schema already refused (a value of the wrong type), so
that one mistake is reported once."""

FAMILIES = ("work", "control", "wait", "iteration")


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One node kind as definitions see it.

    `family`: `work` (an executor runs it), `control` (decided inside the engine),
    `wait` (parks until something from outside arrives) or `iteration` (runs a body
    per item or pass). `params` is the JSON Schema of its params (`$defs/params_<name>`
    in `braidflow schema`); `params_required`: a node of this kind must have params.
    `templated` are the params that may hold `${...}`; of those, `bound_params` also
    read `bound_names` (a foreach's `item` and `index`, a loop's `last` and `index`).
    `branches`: its edges may carry `when`; `timeout_edges`, `error_edges`: it may be
    left by a `timeout: true` or an `on_error: true` edge. `check` finds what the
    schema cannot.
    """

    name: str
    family: str
    params: Mapping[str, Any]
    params_required: bool = True
    templated: tuple[str, ...] = ()
    bound_params: frozenset[str] = frozenset()
    bound_names: frozenset[str] = frozenset()
    branches: bool = False
    timeout_edges: bool = False
    error_edges: bool = False
    check: ParamsCheck | None = None


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a valid JSON Schema (2020-12), or None when it is."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = ".".join(str(p) for p in exc.path)
        return f"invalid JSON Schema{' at ' + at if at else ''}: {exc.message}"
    return None
