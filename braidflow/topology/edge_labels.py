"""Edges that name a label: the label a `classify` node chose picks the edge it goes on along.

Out of a classify node either no edge names a label (its one edge is taken whatever the
label) or every edge but its timeout and on_error edges names one of the node's labels, or is
its `default: true` edge, taken for the labels no edge names. Each label names one edge at
most, and a label no edge names needs the default edge, so every answer has one way on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.kinds.classify import labels_of
from braidflow.topology.loading import Problem

LABELLED_SOURCE = "classify"
"""The kind whose edges may name labels."""

# `when` and `timeout` edges out of a classify are refused already, whatever their label.
_NOT_WITH_LABEL = ("default", "on_error")


def label_problems(doc: Mapping[str, Any]) -> Iterator[Problem]:
    """Every problem of the edges' `label`s, naming the edge (or the node, for a label that
    leads nowhere). Runs on a document whose nodes and edges have their ids."""
    nodes = {n["id"]: n for n in reversed(doc["nodes"])}
    by_source: dict[str, list[Mapping[str, Any]]] = {}
    for e in doc["edges"]:
        by_source.setdefault(e["from"], []).append(e)
    for source, edges in by_source.items():
        node = nodes.get(source)
        if node is None:
            continue
        if node["type"] != LABELLED_SOURCE:
            for e in edges:
                if "label" in e:
                    yield Problem(_where(e), "`label` is only for edges out of a classify node")
            continue
        yield from _classify_problems(node, edges)


def _classify_problems(
    node: Mapping[str, Any], edges: list[Mapping[str, Any]]
) -> Iterator[Problem]:
    params = node.get("params")
    labels = labels_of(params) if isinstance(params, Mapping) else ()
    labelled = [e for e in edges if isinstance(e.get("label"), str)]
    if not labelled:
        return
    named: set[str] = set()
    for e in labelled:
        where, label = _where(e), e["label"]
        for other in _NOT_WITH_LABEL:
            if other in e:
                yield Problem(where, f"an edge with a `label` takes no `{other}`")
        if labels and label not in labels:
            known = ", ".join(labels)
            yield Problem(
                where, f"label {label!r} is not one of node '{node['id']}''s labels ({known})"
            )
        elif label in named:
            yield Problem(where, f"label {label!r} is named by another edge out of '{node['id']}'")
        named.add(label)
    ways_on = [e for e in edges if not e.get("timeout") and not e.get("on_error")]
    for e in ways_on:
        if "label" not in e and not e.get("default"):
            yield Problem(
                _where(e),
                "out of a classify node whose edges name labels, an edge needs a `label`"
                " or `default: true`",
            )
    nowhere = [label for label in labels if label not in named]
    if nowhere and not any(e.get("default") for e in ways_on):
        yield Problem(
            f"node '{node['id']}'",
            f"no edge for the label{'s' if len(nowhere) > 1 else ''} {', '.join(nowhere)}:"
            " give each an edge with its `label`, or add an edge with `default: true`",
        )


def _where(edge: Mapping[str, Any]) -> str:
    return f"edge '{edge['from']} -> {edge['to']}'"
