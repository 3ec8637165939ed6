"""The dashboard's graph layout: layered top-down as `braidflow inspect`'s flowchart, boxes
that never overlap, loops drawn beside the graph, labels as the flowchart's."""

from __future__ import annotations

from braidflow.topology import Definition, Edge, Node
from braidflow.topology.layout import NODE_HEIGHT, NODE_WIDTH, layout, layout_graph
from braidflow.topology.mermaid import mermaid

FAN_OUT = Definition(
    id="fan",
    nodes=(
        Node("split", "parallel"),
        Node("a", "task"),
        Node("b", "task"),
        Node("c", "task"),
        Node("meet", "join"),
        Node("done", "end"),
    ),
    edges=(
        Edge("split", "a"),
        Edge("split", "b"),
        Edge("split", "c"),
        Edge("a", "meet"),
        Edge("b", "meet"),
        Edge("c", "meet"),
        Edge("meet", "done"),
    ),
)


def _placed(definition: Definition) -> dict[str, tuple[int, int, int]]:
    return {n.id: (n.layer, n.x, n.y) for n in layout(definition).nodes}


def test_each_node_sits_one_layer_below_its_longest_path_from_a_root() -> None:
    placed = _placed(FAN_OUT)
    assert {node: layer for node, (layer, _, _) in placed.items()} == {
        "split": 0,
        "a": 1,
        "b": 1,
        "c": 1,
        "meet": 2,
        "done": 3,
    }
    # A shortcut edge does not pull its target up: the longest path decides.
    shortcut = Definition(
        id="s",
        nodes=(Node("x", "task"), Node("y", "task"), Node("z", "end")),
        edges=(Edge("x", "y"), Edge("y", "z"), Edge("x", "z", default=True)),
    )
    assert _placed(shortcut)["z"][0] == 2


def test_boxes_never_overlap_and_fit_inside_the_drawing() -> None:
    drawn = layout(FAN_OUT)
    boxes = [(n.x, n.y) for n in drawn.nodes]
    for i, (x1, y1) in enumerate(boxes):
        assert x1 >= 0 and x1 + NODE_WIDTH <= drawn.width
        assert y1 >= 0 and y1 + NODE_HEIGHT <= drawn.height
        for x2, y2 in boxes[i + 1 :]:
            assert abs(x1 - x2) >= NODE_WIDTH or abs(y1 - y2) >= NODE_HEIGHT


def test_a_lone_chain_is_centred_under_the_widest_layer() -> None:
    placed = _placed(FAN_OUT)
    assert placed["split"][1] == placed["b"][1] == placed["meet"][1] == placed["done"][1]
    assert placed["a"][1] < placed["b"][1] < placed["c"][1]


def test_barycentre_sweeps_untangle_crossed_branches() -> None:
    # Written in an order that crosses: p goes to the right child, q to the left one.
    crossed = Definition(
        id="x",
        nodes=(
            Node("root", "parallel"),
            Node("p", "task"),
            Node("q", "task"),
            Node("q2", "task"),
            Node("p2", "task"),
        ),
        edges=(Edge("root", "p"), Edge("root", "q"), Edge("p", "p2"), Edge("q", "q2")),
    )
    placed = _placed(crossed)
    assert (placed["p"][1] < placed["q"][1]) == (placed["p2"][1] < placed["q2"][1])


def test_a_loop_back_edge_is_drawn_beside_the_graph_and_layers_ignore_it() -> None:
    loop = Definition(
        id="loop",
        nodes=(Node("try", "task"), Node("check", "decision"), Node("done", "end")),
        edges=(
            Edge("try", "check"),
            Edge("check", "try", when="output.again"),
            Edge("check", "done", default=True),
        ),
    )
    drawn = layout(loop)
    assert [n.layer for n in drawn.nodes] == [0, 1, 2]
    back = [e for e in drawn.edges if e.back]
    assert [(e.source, e.target, e.label) for e in back] == [("check", "try", "output.again")]
    # It runs down the right of every box.
    assert min(x for x, _ in back[0].points) >= max(n.x + NODE_WIDTH for n in drawn.nodes)


def test_edges_carry_the_labels_the_flowchart_prints() -> None:
    labelled = Definition(
        id="l",
        nodes=(Node("ask", "approval"), Node("yes", "end"), Node("no", "end"), Node("t", "end")),
        edges=(
            Edge("ask", "yes", when='output.choice == "approve"'),
            Edge("ask", "no", default=True),
            Edge("ask", "t", timeout=True),
        ),
    )
    labels = [e.label for e in layout(labelled).edges]
    assert labels == ['output.choice == "approve"', "default", "timeout"]
    chart = mermaid(labelled)
    assert "|default|" in chart and "|timeout|" in chart and "#quot;approve#quot;" in chart


def test_the_json_shape_the_api_serves() -> None:
    shown = layout(FAN_OUT).as_json()
    assert set(shown) == {"width", "height", "node_width", "node_height", "nodes", "edges"}
    assert shown["nodes"][0] == {
        "id": "split",
        "type": "parallel",
        "name": None,
        "layer": 0,
        "order": 0,
        "x": shown["nodes"][0]["x"],
        "y": 16,
    }
    first = shown["edges"][0]
    assert first["points"][0] == [shown["nodes"][0]["x"] + NODE_WIDTH // 2, 16 + NODE_HEIGHT]


def test_any_graph_lays_out_even_one_with_no_edges_or_nodes() -> None:
    assert layout_graph([], []).as_json()["nodes"] == []
    alone = layout_graph([("a", "workflow", None), ("b", "workflow", "B")], [])
    assert [(n.layer, n.order) for n in alone.nodes] == [(0, 0), (0, 1)]
