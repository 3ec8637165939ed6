"""Graph analysis of a definition: roots, branches, convergence, order, parallel groups."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from braidflow.topology.model import Definition, Edge


@dataclass(frozen=True, slots=True)
class ParallelGroup:
    """Branches started together by a `parallel` node, up to where they converge."""

    split: str
    branches: tuple[tuple[str, ...], ...]
    converges_at: str | None


class Graph:
    """Adjacency of a definition's nodes, in file order. Edges to unknown nodes are ignored."""

    def __init__(self, node_ids: Iterable[str], edges: Iterable[Edge]) -> None:
        self.nodes: tuple[str, ...] = tuple(dict.fromkeys(node_ids))
        known = set(self.nodes)
        self.successors: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.predecessors: dict[str, list[str]] = {n: [] for n in self.nodes}
        for edge in edges:
            if edge.source in known and edge.target in known:
                self.successors[edge.source].append(edge.target)
                self.predecessors[edge.target].append(edge.source)

    @classmethod
    def of(cls, definition: Definition) -> Graph:
        return cls((n.id for n in definition.nodes), definition.edges)

    @property
    def roots(self) -> list[str]:
        return [n for n in self.nodes if not self.predecessors[n]]

    @property
    def leaves(self) -> list[str]:
        return [n for n in self.nodes if not self.successors[n]]

    @property
    def branch_points(self) -> list[str]:
        return [n for n in self.nodes if len(set(self.successors[n])) > 1]

    @property
    def convergence_points(self) -> list[str]:
        return [n for n in self.nodes if len(set(self.predecessors[n])) > 1]

    def reachable(self, starts: Iterable[str], *, backwards: bool = False) -> set[str]:
        """Nodes reachable from `starts` (included), following edges forwards or backwards."""
        step = self.predecessors if backwards else self.successors
        seen: set[str] = set()
        stack = [s for s in starts if s in step]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(step[node])
        return seen

    def cycles(self) -> list[list[str]]:
        """Each strongly connected component that forms a cycle, nodes in file order."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        found: list[list[str]] = []
        counter = 0
        position = {n: i for i, n in enumerate(self.nodes)}
        for start in self.nodes:
            if start in index:
                continue
            # Iterative Tarjan: deep graphs must not hit the recursion limit.
            work: list[tuple[str, int]] = [(start, 0)]
            while work:
                node, i = work.pop()
                if i == 0:
                    index[node] = low[node] = counter
                    counter += 1
                    stack.append(node)
                    on_stack.add(node)
                succ = self.successors[node]
                if i < len(succ):
                    work.append((node, i + 1))
                    nxt = succ[i]
                    if nxt not in index:
                        work.append((nxt, 0))
                    elif nxt in on_stack:
                        low[node] = min(low[node], index[nxt])
                    continue
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in self.successors[node]:
                        found.append(sorted(component, key=position.__getitem__))
        return found

    @cached_property
    def topological_order(self) -> list[str]:
        """Kahn's order, ties broken by file order. Nodes on cycles are left out."""
        indegree = {n: len(self.predecessors[n]) for n in self.nodes}
        position = {n: i for i, n in enumerate(self.nodes)}
        ready = [n for n in self.nodes if indegree[n] == 0]
        order: list[str] = []
        while ready:
            ready.sort(key=position.__getitem__, reverse=True)
            node = ready.pop()
            order.append(node)
            for nxt in self.successors[node]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        return order

    @cached_property
    def ancestors(self) -> dict[str, frozenset[str]]:
        """For each node, the nodes that come before it on some path (acyclic graphs)."""
        result: dict[str, frozenset[str]] = {}
        for node in self.topological_order:
            acc: set[str] = set()
            for pred in self.predecessors[node]:
                acc.add(pred)
                acc |= result.get(pred, frozenset())
            result[node] = frozenset(acc)
        return result

    @cached_property
    def immediate_post_dominators(self) -> dict[str, str | None]:
        """The first node every path from a node passes through (None: paths end apart)."""
        exit_ = object()
        pdom: dict[str, frozenset[object]] = {}
        for node in reversed(self.topological_order):
            succ = self.successors[node]
            if not succ:
                pdom[node] = frozenset({node, exit_})
            else:
                common = frozenset.intersection(*(pdom[s] for s in succ))
                pdom[node] = common | {node}
        result: dict[str, str | None] = {}
        for node, dominators in pdom.items():
            # Post-dominators form a chain; the nearest is the one with the most of its own.
            candidates = [d for d in dominators if d is not exit_ and d != node]
            result[node] = max(candidates, key=lambda d: len(pdom[d]), default=None)  # type: ignore[arg-type]
        return result

    def parallel_groups(self, splits: Iterable[str]) -> list[ParallelGroup]:
        """For each split node, its branches up to the point where they converge."""
        groups = []
        for split in splits:
            stop = self.immediate_post_dominators.get(split)
            branches = []
            for start in dict.fromkeys(self.successors[split]):
                if start == stop:
                    branches.append(())
                    continue
                seen: list[str] = []
                stack = [start]
                while stack:
                    node = stack.pop()
                    if node == stop or node in seen:
                        continue
                    seen.append(node)
                    stack.extend(reversed(self.successors[node]))
                branches.append(tuple(seen))
            groups.append(ParallelGroup(split, tuple(branches), stop))
        return groups
