"""The work node kinds other packages register in the `braidflow.nodes` entry-point group,
read at start and handed to the engine and the topology (docs/custom-kinds.md).

The shell's part: the topology and the engine stay pure and are given the kinds' specs.
The command line calls `use_custom_kinds` before it reads a definition; a worker's
composition root before its catalog, and gives the executor each kind's `run`.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from braidflow.custom_kinds import ENTRY_POINT_GROUP, CustomKind
from braidflow.engine.nodes import add_work_kinds
from braidflow.topology.kinds import BUILT_IN, KINDS, KindSpec
from braidflow.topology.kinds.spec import schema_problem

# A node's `type`, as the built-in kinds spell theirs.
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class KindPluginError(Exception):
    """Custom kinds refused at start; the message names each package and entry point."""


@functools.cache
def use_custom_kinds() -> tuple[CustomKind, ...]:
    """Read the installed packages' kinds and register them, once per process; the kinds.

    KindPluginError when one is refused: nothing is registered then."""
    kinds = read_custom_kinds(entry_points(group=ENTRY_POINT_GROUP))
    add_work_kinds(spec_of(kind) for kind in kinds)
    return kinds


def read_custom_kinds(found: Iterable[EntryPoint]) -> tuple[CustomKind, ...]:
    """The kinds the entry points name, checked against each other and the kinds registered;
    KindPluginError listing every one refused."""
    kinds: list[CustomKind] = []
    owners: dict[str, str] = {}
    problems: list[str] = []
    for entry_point in sorted(found, key=lambda e: (e.name, e.value)):
        where = _where(entry_point)
        try:
            kind = _checked(entry_point)
        except KindPluginError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if kind.name in KINDS:
            registered = "a built-in kind" if kind.name in BUILT_IN else "a kind registered before"
            problems.append(f"{where}: kind {kind.name!r} clashes with {registered}")
        elif kind.name in owners:
            problems.append(
                f"{where}: kind {kind.name!r} clashes with the one of {owners[kind.name]}"
            )
        else:
            owners[kind.name] = where
            kinds.append(kind)
    if problems:
        raise KindPluginError(
            f"custom node kinds refused ({ENTRY_POINT_GROUP} entry points): {'; '.join(problems)}"
        )
    return tuple(kinds)


def spec_of(kind: CustomKind) -> KindSpec:
    """What the topology knows of a custom kind: a work kind, left by `on_error` edges."""
    return KindSpec(
        kind.name,
        "work",
        kind.params,
        params_required=bool(kind.params.get("required")),
        templated=kind.templated,
        error_edges=True,
    )


def _where(entry_point: EntryPoint) -> str:
    package = entry_point.dist.name if entry_point.dist is not None else "an unknown package"
    return f"package {package!r} ({entry_point.name} = {entry_point.value})"


def _checked(entry_point: EntryPoint) -> CustomKind:
    """The kind an entry point names, its params a copy; KindPluginError saying what is wrong."""
    try:
        kind = entry_point.load()
    except Exception as exc:
        raise KindPluginError(f"cannot load: {type(exc).__name__}: {exc}") from None
    if not isinstance(kind, CustomKind):
        raise KindPluginError(f"names a {type(kind).__name__}, not a braidflow.CustomKind")
    if not isinstance(kind.name, str) or not _NAME.match(kind.name):
        raise KindPluginError(
            f"kind name {kind.name!r} must be lower case letters, digits and _, from a letter"
        )
    if kind.name != entry_point.name:
        raise KindPluginError(f"the entry point must be named after its kind {kind.name!r}")
    try:
        params = json.loads(json.dumps(kind.params))
    except (TypeError, ValueError) as exc:
        raise KindPluginError(f"kind {kind.name!r}: params schema is not JSON: {exc}") from None
    problem = schema_problem(params)
    if problem is None and (not isinstance(params, dict) or params.get("type") != "object"):
        problem = 'it must describe an object ("type": "object")'
    if problem is not None:
        raise KindPluginError(f"kind {kind.name!r}: bad params schema: {problem}")
    properties = params.get("properties", {})
    templated = kind.templated
    if not isinstance(templated, tuple) or not all(isinstance(t, str) for t in templated):
        raise KindPluginError(f"kind {kind.name!r}: templated must be a tuple of param names")
    unknown = sorted(set(templated) - set(properties))
    if unknown:
        raise KindPluginError(
            f"kind {kind.name!r}: templated names params its schema's properties lack:"
            f" {', '.join(unknown)}"
        )
    if not inspect.iscoroutinefunction(kind.run):
        raise KindPluginError(f"kind {kind.name!r}: run must be an async function")
    return CustomKind(kind.name, params, kind.run, templated)
