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

Other packages add work kinds at start (`braidflow.kind_plugins`, docs/custom-kinds.md):
the shell reads them and hands their specs to `add_kinds`, through the engine's
`add_work_kinds`, before any definition is read. So every list derived from `KINDS`
is a live view of the kinds registered, not a copy taken at import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from braidflow.topology.kinds import (
    approval,
    classify,
    code,
    decision,
    delay,
    email,
    end,
    extract,
    fetch_page,
    foreach,
    http,
    join,
    llm,
    loop,
    parallel,
    publish,
    subworkflow,
    summarize,
    task,
    transform,
    wait_event,
)
from braidflow.topology.kinds.spec import KindSpec

_REGISTERED: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        approval.SPEC,
        classify.SPEC,
        code.SPEC,
        decision.SPEC,
        delay.SPEC,
        email.SPEC,
        end.SPEC,
        extract.SPEC,
        fetch_page.SPEC,
        foreach.SPEC,
        http.SPEC,
        join.SPEC,
        llm.SPEC,
        loop.SPEC,
        parallel.SPEC,
        publish.SPEC,
        subworkflow.SPEC,
        summarize.SPEC,
        task.SPEC,
        transform.SPEC,
        wait_event.SPEC,
    )
}


KINDS: Mapping[str, KindSpec] = MappingProxyType(_REGISTERED)
BUILT_IN = frozenset(_REGISTERED)
"""The kinds braidflow ships; the others in `KINDS` were added at start by `add_kinds`."""


def add_kinds(specs: Iterable[KindSpec]) -> None:
    """Register more kinds, all or none; ValueError naming a kind already registered or
    repeated. Called once at start, before any definition is read."""
    specs = tuple(specs)
    names = [spec.name for spec in specs]
    taken = sorted({n for n in names if n in _REGISTERED or names.count(n) > 1})
    if taken:
        raise ValueError(f"node kinds registered twice: {', '.join(taken)}")
    _REGISTERED.update((spec.name, spec) for spec in specs)


class KindNames(Set[str]):
    """The names of the registered kinds `picks` chooses, read live from `KINDS`.

    Set operations on it give frozensets."""

    __slots__ = ("_picks",)

    def __init__(self, picks: Callable[[KindSpec], bool]) -> None:
        self._picks = picks

    def __contains__(self, name: object) -> bool:
        spec = _REGISTERED.get(name) if isinstance(name, str) else None
        return spec is not None and self._picks(spec)

    def __iter__(self) -> Iterator[str]:
        return (name for name, spec in _REGISTERED.items() if self._picks(spec))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"KindNames({sorted(self)})"

    @classmethod
    def _from_iterable(cls, names: Iterable[str]) -> frozenset[str]:
        return frozenset(names)


class _Templated(Mapping[str, tuple[str, ...]]):
    """`TEMPLATED_PARAMS`, read live from `KINDS`."""

    def __getitem__(self, name: str) -> tuple[str, ...]:
        spec = _REGISTERED.get(name)
        if spec is None or not spec.templated:
            raise KeyError(name)
        return spec.templated

    def __iter__(self) -> Iterator[str]:
        return (name for name, spec in _REGISTERED.items() if spec.templated)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _family(family: str) -> KindNames:
    return KindNames(lambda spec: spec.family == family)


NODE_TYPES = KindNames(lambda spec: True)
# Run by an executor: the inline `do` of a foreach is one of these.
WORK_TYPES = _family("work")
# Decided inside the engine; `publish` too, since the engine emits its event itself.
CONTROL_TYPES = _family("control")
# Park the execution until something from outside arrives: an event, a timer, a
# person, a child execution.
WAIT_TYPES = _family("wait")
# Run a body per item (`foreach`) or per pass (`loop`).
ITERATION_TYPES = _family("iteration")
BRANCHING_TYPES = KindNames(lambda spec: spec.branches)
# Nodes whose timeout may lead along a `timeout: true` edge instead of failing them.
# The other waits end their own way: an approval by `on_timeout`, a delay by its
# timer; a subworkflow's timeout is a failure, which an on_error edge can catch.
TIMEOUT_EDGE_SOURCES = KindNames(lambda spec: spec.timeout_edges)
# Nodes that can fail for good, whose failure may lead along an `on_error: true` edge.
ERROR_EDGE_SOURCES = KindNames(lambda spec: spec.error_edges)
# Params whose values may hold `${...}` templates, by node type.
TEMPLATED_PARAMS: Mapping[str, tuple[str, ...]] = _Templated()


@cache
def _format_schema() -> str:
    return resources.files("braidflow.topology").joinpath("definition.schema.json").read_text()


def definition_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the definition format: the shared parts, and each kind's params.

    A node's `type` enumerates `KINDS`; its `params` follow `$defs/params_<kind>`, as do those
    of a foreach's or loop's inline `do`, which may be any work kind.
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
    # A foreach's or a loop's inline `do` is any work node, its params those of its kind.
    inline = schema["$defs"]["foreach_inline"]
    inline["properties"]["type"] = {"enum": sorted(WORK_TYPES)}
    inline["allOf"] = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"properties": {"params": {"$ref": f"#/$defs/params_{name}"}}},
        }
        for name in sorted(WORK_TYPES)
    ]
    for name, spec in sorted(KINDS.items()):
        schema["$defs"][f"params_{name}"] = spec.params
    return schema


__all__ = [
    "BRANCHING_TYPES",
    "BUILT_IN",
    "CONTROL_TYPES",
    "ERROR_EDGE_SOURCES",
    "ITERATION_TYPES",
    "KINDS",
    "NODE_TYPES",
    "TEMPLATED_PARAMS",
    "TIMEOUT_EDGE_SOURCES",
    "WAIT_TYPES",
    "WORK_TYPES",
    "KindNames",
    "KindSpec",
    "add_kinds",
    "definition_schema",
]
