"""Node kinds, as definitions see them: one module per kind, registered in `KINDS`.

Each module (`kinds/<kind>.py`) gives a `KindSpec`: its params' JSON Schema and
the checks the schema cannot express, the params that hold templates, the edges
it may leave by. Every list of kinds the topology needs (validation, the JSON
Schema's `type` enum, templates) is derived from `KINDS` here.

Layering (topology -> engine -> schemas -> streams): the specs live in the
topology, which imports nothing from the engine. How a kind *runs* lives in
`braidflow/engine/nodes/<kind>.py`, whose table refuses to load unless it
covers exactly the kinds registered here. So a new node kind is one spec module
here, one engine module there, and its section in docs/format.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from braidflow.topology.kinds import (
    approval,
    code,
    decision,
    delay,
    end,
    fetch_page,
    foreach,
    http,
    join,
    llm,
    loop,
    parallel,
    publish,
    subworkflow,
    task,
    transform,
    wait_event,
)
from braidflow.topology.kinds.spec import KindSpec

KINDS: Mapping[str, KindSpec] = {
    spec.name: spec
    for spec in (
        approval.SPEC,
        code.SPEC,
        decision.SPEC,
        delay.SPEC,
        end.SPEC,
        fetch_page.SPEC,
        foreach.SPEC,
        http.SPEC,
        join.SPEC,
        llm.SPEC,
        loop.SPEC,
        parallel.SPEC,
        publish.SPEC,
        subworkflow.SPEC,
        task.SPEC,
        transform.SPEC,
        wait_event.SPEC,
    )
}


def _family(family: str) -> frozenset[str]:
    return frozenset(name for name, spec in KINDS.items() if spec.family == family)


NODE_TYPES = frozenset(KINDS)
# Run by an executor: the inline `do` of a foreach is one of these.
WORK_TYPES = _family("work")
# Decided inside the engine; `publish` too, since the engine emits its event itself.
CONTROL_TYPES = _family("control")
# Park the execution until something from outside arrives: an event, a timer, a
# person, a child execution.
WAIT_TYPES = _family("wait")
# Run a body per item (`foreach`) or per pass (`loop`).
ITERATION_TYPES = _family("iteration")
BRANCHING_TYPES = frozenset(name for name, spec in KINDS.items() if spec.branches)
# Nodes whose timeout may lead along a `timeout: true` edge instead of failing them.
# The other waits end their own way: an approval by `on_timeout`, a delay by its
# timer; a subworkflow's timeout is a failure, which an on_error edge can catch.
TIMEOUT_EDGE_SOURCES = frozenset(name for name, spec in KINDS.items() if spec.timeout_edges)
# Nodes that can fail for good, whose failure may lead along an `on_error: true` edge.
ERROR_EDGE_SOURCES = frozenset(name for name, spec in KINDS.items() if spec.error_edges)
# Params whose values may hold `${...}` templates, by node type.
TEMPLATED_PARAMS: Mapping[str, tuple[str, ...]] = {
    name: spec.templated for name, spec in KINDS.items() if spec.templated
}


@cache
def _format_schema() -> str:
    return resources.files("braidflow.topology").joinpath("definition.schema.json").read_text()


def definition_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the definition format: the shared parts, and each kind's params.

    A node's `type` enumerates `KINDS`; its `params` follow `$defs/params_<kind>`.
    """
    schema = json.loads(_format_schema())
    node = schema["$defs"]["node"]
    node["properties"]["type"] = {"enum": sorted(KINDS)}
    node["allOf"] = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {
                **({"required": ["params"]} if spec.params_required else {}),
                "properties": {"params": {"$ref": f"#/$defs/params_{name}"}},
            },
        }
        for name, spec in sorted(KINDS.items())
    ]
    for name, spec in sorted(KINDS.items()):
        schema["$defs"][f"params_{name}"] = spec.params
    return schema


__all__ = [
    "BRANCHING_TYPES",
    "CONTROL_TYPES",
    "ERROR_EDGE_SOURCES",
    "ITERATION_TYPES",
    "KINDS",
    "NODE_TYPES",
    "TEMPLATED_PARAMS",
    "TIMEOUT_EDGE_SOURCES",
    "WAIT_TYPES",
    "WORK_TYPES",
    "KindSpec",
    "definition_schema",
]
