"""Graph analysis: where a workflow starts, branches, converges and ends."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

from braidflow.topology import Edge, Graph, ParallelGroup, load_workflow

EXAMPLE = Path(__file__).parents[3] / "examples" / "new-hire-approval.yaml"


def graph_of(edges: str) -> Graph:
    """A graph from `a>b c>d` shorthand; nodes in order of first mention."""
    pairs = [tuple(pair.split(">")) for pair in edges.split()]
    nodes = [n for pair in pairs for n in pair]
    return Graph(nodes, [Edge(a, b) for a, b in pairs])


def chain(length: int) -> Graph:
    nodes = [f"n{i}" for i in range(length)]
    return Graph(nodes, [Edge(a, b) for a, b in pairwise(nodes)])


def test_the_example_starts_branches_converges_and_ends_where_expected() -> None:
    graph = load_workflow(EXAMPLE.read_bytes()).graph
    assert graph.roots == ["ask_all"]
    assert graph.leaves == ["proceed", "reject"]
    assert graph.branch_points == ["ask_all", "approved"]
    assert graph.convergence_points == ["all_answers"]
    assert graph.topological_order == [
        "ask_all",
        "it",
        "hr",
        "manager",
        "all_answers",
        "approved",
        "proceed",
        "reject",
    ]


def test_the_example_runs_three_branches_in_parallel_up_to_the_join() -> None:
    graph = load_workflow(EXAMPLE.read_bytes()).graph
    assert graph.parallel_groups(["ask_all"]) == [
        ParallelGroup("ask_all", (("it",), ("hr",), ("manager",)), "all_answers")
    ]


def test_a_parallel_branch_holds_everything_before_the_convergence() -> None:
    graph = graph_of("p>a a>d d>x d>y x>j y>j p>b b>j p>j j>end")
    (group,) = graph.parallel_groups(["p"])
    assert group.converges_at == "j"
    assert group.branches == (("a", "d", "x", "y"), ("b",), ())


def test_branches_that_end_apart_never_converge() -> None:
    graph = graph_of("p>a p>b a>end_a b>end_b")
    assert graph.parallel_groups(["p"]) == [
        ParallelGroup("p", (("a", "end_a"), ("b", "end_b")), None)
    ]


def test_topological_order_breaks_ties_by_file_order() -> None:
    graph = Graph(["s", "c", "b", "a", "e"], [Edge("s", x) for x in "abc"] + [Edge("a", "e")])
    assert graph.topological_order == ["s", "c", "b", "a", "e"]


def test_cycles_are_found() -> None:
    graph = graph_of("s>a a>b b>c c>a c>end")
    assert graph.cycles() == [["a", "b", "c"]]
    assert "a" not in graph.topological_order


def test_a_node_looping_on_itself_is_a_cycle() -> None:
    assert graph_of("s>a a>a a>end").cycles() == [["a"]]


def test_an_acyclic_graph_has_no_cycles() -> None:
    assert graph_of("s>a s>b a>end b>end").cycles() == []


def test_deep_chains_do_not_hit_the_recursion_limit() -> None:
    graph = chain(5000)
    assert graph.cycles() == []
    assert len(graph.topological_order) == 5000
    assert len(graph.reachable(["n0"])) == 5000
    assert graph.reachable(["n4999"], backwards=True) == set(graph.nodes)


def test_a_long_cycle_is_found_without_recursion() -> None:
    nodes = [f"n{i}" for i in range(5000)]
    graph = Graph(nodes, [Edge(a, b) for a, b in zip(nodes, [*nodes[1:], nodes[0]], strict=True)])
    assert graph.cycles() == [nodes]


def test_a_workflow_of_a_thousand_nodes_in_a_row_loads() -> None:
    nodes = [{"id": f"n{i}", "type": "task", "params": {"handler": "h"}} for i in range(999)]
    nodes.append({"id": "done", "type": "end"})
    ids = [n["id"] for n in nodes]
    edges = [{"from": a, "to": b} for a, b in pairwise(ids)]
    workflow = load_workflow(json.dumps({"id": "long", "nodes": nodes, "edges": edges}))
    assert workflow.root == "n0"
    assert workflow.graph.topological_order == ids
    assert workflow.graph.immediate_post_dominators["n0"] == "n1"
