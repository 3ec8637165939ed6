"""What changed between two versions of a workflow: a unified diff and the nodes. Pure."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from braidflow.topology.model import Definition, Edge, Node


@dataclass(frozen=True, slots=True)
class NodeChanges:
    """Node ids added, removed, and changed (the node itself or the edges leaving it)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]


def text_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """The unified diff of two definition texts; empty when they are equal."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name
    )
    # A last line without a newline would run into the next header.
    return "".join(line if line.endswith("\n") else f"{line}\n" for line in lines)


def node_changes(old: Definition, new: Definition) -> NodeChanges:
    """The nodes `new` adds, removes and changes relative to `old`, each sorted by id."""
    before, after = _shapes(old), _shapes(new)
    return NodeChanges(
        tuple(sorted(after.keys() - before.keys())),
        tuple(sorted(before.keys() - after.keys())),
        tuple(sorted(n for n in before.keys() & after.keys() if before[n] != after[n])),
    )


def _shapes(definition: Definition) -> dict[str, tuple[Node, frozenset[Edge]]]:
    leaving: dict[str, set[Edge]] = {}
    for edge in definition.edges:
        leaving.setdefault(edge.source, set()).add(edge)
    return {n.id: (n, frozenset(leaving.get(n.id, ()))) for n in definition.nodes}
