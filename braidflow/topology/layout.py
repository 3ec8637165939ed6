"""Where each node of a definition sits when drawn: the layered top-down layout of the
flowchart `braidflow inspect` prints (Mermaid `flowchart TD`), computed once here so the
dashboard only draws it.

Layers by longest path from the roots (an edge back into a loop is set aside and drawn
beside the graph), then a few sweeps order each layer by the mean position of its
neighbours, which untangles most crossings. Pure: plain data in, plain data out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from braidflow.topology.graph import Graph
from braidflow.topology.model import Definition, Edge

NODE_WIDTH = 168
NODE_HEIGHT = 48
GAP_X = 32
GAP_Y = 56
MARGIN = 16
# Down then up: enough to settle the small graphs workflows are; more changes little.
SWEEPS = 4


@dataclass(frozen=True, slots=True)
class PlacedNode:
    """A node's box: its top-left corner, its layer (row) and place in it."""

    id: str
    type: str
    name: str | None
    layer: int
    order: int
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class PlacedEdge:
    """An edge as a polyline; `back` for one that goes up into a loop."""

    source: str
    target: str
    label: str | None
    points: tuple[tuple[int, int], ...]
    back: bool


@dataclass(frozen=True, slots=True)
class Layout:
    width: int
    height: int
    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]

    def as_json(self) -> dict[str, Any]:
        """The layout as the API serves it."""
        return {
            "width": self.width,
            "height": self.height,
            "node_width": NODE_WIDTH,
            "node_height": NODE_HEIGHT,
            "nodes": [
                {
                    "id": n.id,
                    "type": n.type,
                    "name": n.name,
                    "layer": n.layer,
                    "order": n.order,
                    "x": n.x,
                    "y": n.y,
                }
                for n in self.nodes
            ],
            "edges": [
                {
                    "source": e.source,
                    "target": e.target,
                    "label": e.label,
                    "points": [list(p) for p in e.points],
                    "back": e.back,
                }
                for e in self.edges
            ],
        }


def edge_label(edge: Edge) -> str | None:
    """What an edge is labelled with: its condition or label, or the kind of edge it is."""
    if edge.when is not None:
        return edge.when
    if edge.label is not None:
        return edge.label
    if edge.default:
        return "default"
    if edge.timeout:
        return "timeout"
    if edge.on_error:
        return "on error"
    return None


def back_edges(graph: Graph) -> set[tuple[str, str]]:
    """Edges that close a cycle, found by a depth-first walk from the roots in file order
    (nodes no root reaches start walks of their own)."""
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    found: set[tuple[str, str]] = set()
    for start in [*graph.roots, *graph.nodes]:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(graph.successors[start]))]
        while stack:
            node, successors = stack[-1]
            target = next(successors, None)
            if target is None:
                state[node] = 2
                stack.pop()
            elif state.get(target) == 1:
                found.add((node, target))
            elif target not in state:
                state[target] = 1
                stack.append((target, iter(graph.successors[target])))
    return found


def _layers(graph: Graph, back: set[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the longest path to it from a root, back edges left out."""
    indegree = {n: 0 for n in graph.nodes}
    for node in graph.nodes:
        for target in graph.successors[node]:
            if (node, target) not in back:
                indegree[target] += 1
    layer = {n: 0 for n in graph.nodes}
    ready = [n for n in graph.nodes if indegree[n] == 0]
    while ready:
        node = ready.pop(0)
        for target in graph.successors[node]:
            if (node, target) in back:
                continue
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return layer


def _orders(graph: Graph, layer: dict[str, int]) -> list[list[str]]:
    """The nodes of each layer, left to right, after barycentre sweeps."""
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node in graph.nodes:
        rows[layer[node]].append(node)

    def sweep(index: int, neighbours: dict[str, list[str]], of_row: list[str]) -> None:
        place = {n: i for i, n in enumerate(of_row)}
        row = rows[index]
        current = {n: i for i, n in enumerate(row)}

        def centre(node: str) -> float:
            seen = [place[n] for n in neighbours[node] if n in place]
            return sum(seen) / len(seen) if seen else current[node]

        # Stable: ties keep the order they had, which starts as file order.
        row.sort(key=lambda n: (centre(n), current[n]))

    for turn in range(SWEEPS):
        if turn % 2 == 0:
            for index in range(1, len(rows)):
                sweep(index, graph.predecessors, rows[index - 1])
        else:
            for index in range(len(rows) - 2, -1, -1):
                sweep(index, graph.successors, rows[index + 1])
    return rows


def layout(definition: Definition) -> Layout:
    """The layered top-down layout of `definition`'s nodes and edges."""
    return layout_graph(
        [(n.id, n.type, n.name) for n in definition.nodes],
        [(e.source, e.target, edge_label(e)) for e in definition.edges],
    )


def layout_graph(
    nodes: Sequence[tuple[str, str, str | None]], edges: Sequence[tuple[str, str, str | None]]
) -> Layout:
    """The layered top-down layout of any graph: `nodes` as (id, type, name) and `edges` as
    (source, target, label), e.g. a department's workflows and what links them."""
    graph = Graph((n[0] for n in nodes), (Edge(source, target) for source, target, _ in edges))
    back = back_edges(graph)
    rows = _orders(graph, _layers(graph, back))
    widest = max((len(row) for row in rows), default=0)
    width = 2 * MARGIN + widest * NODE_WIDTH + max(widest - 1, 0) * GAP_X
    has_back = any((source, target) in back for source, target, _ in edges)
    # Back edges run down the right margin, beside every node.
    if has_back:
        width += GAP_X
    height = 2 * MARGIN + len(rows) * NODE_HEIGHT + max(len(rows) - 1, 0) * GAP_Y
    by_id = {n[0]: n for n in nodes}
    placed: dict[str, PlacedNode] = {}
    for index, row in enumerate(rows):
        row_width = len(row) * NODE_WIDTH + max(len(row) - 1, 0) * GAP_X
        left = MARGIN + (widest * NODE_WIDTH + max(widest - 1, 0) * GAP_X - row_width) // 2
        for order, node_id in enumerate(row):
            _, kind, name = by_id[node_id]
            placed[node_id] = PlacedNode(
                node_id,
                kind,
                name,
                index,
                order,
                left + order * (NODE_WIDTH + GAP_X),
                MARGIN + index * (NODE_HEIGHT + GAP_Y),
            )
    placed_edges = []
    for source_id, target_id, label in edges:
        source, target = placed.get(source_id), placed.get(target_id)
        if source is None or target is None:
            continue
        is_back = (source_id, target_id) in back
        if is_back:
            side = width - MARGIN // 2
            points = (
                (source.x + NODE_WIDTH, source.y + NODE_HEIGHT // 2),
                (side, source.y + NODE_HEIGHT // 2),
                (side, target.y + NODE_HEIGHT // 2),
                (target.x + NODE_WIDTH, target.y + NODE_HEIGHT // 2),
            )
        else:
            points = (
                (source.x + NODE_WIDTH // 2, source.y + NODE_HEIGHT),
                (target.x + NODE_WIDTH // 2, target.y),
            )
        placed_edges.append(PlacedEdge(source_id, target_id, label, points, is_back))
    ordered = tuple(placed[n[0]] for n in nodes if n[0] in placed)
    return Layout(width, height, tuple(dict.fromkeys(ordered)), tuple(placed_edges))
