"""Mermaid flowcharts of definitions."""

from __future__ import annotations

from braidflow.topology import Definition, Edge, Node
from braidflow.topology.mermaid import mermaid


def test_shapes_follow_node_types_and_labels_show_names() -> None:
    definition = Definition(
        id="wf",
        nodes=(
            Node("split", "parallel"),
            Node("fetch", "http", name="Fetch the profile"),
            Node("shape", "transform"),
            Node("gather", "join"),
            Node("check", "decision", name="Old enough?"),
            Node("done", "end"),
        ),
        edges=(),
    )
    assert mermaid(definition).splitlines() == [
        "flowchart TD",
        '    split[["split"]]',
        '    fetch["fetch (http)<br/>Fetch the profile"]',
        '    shape["shape (transform)"]',
        '    gather[["gather"]]',
        '    check{"check<br/>Old enough?"}',
        '    done(["done"])',
    ]


def test_labels_escape_what_mermaid_would_misread() -> None:
    definition = Definition(
        id="wf",
        nodes=(Node("check", "decision", name='Is it "big" <#1>?'), Node("big", "end")),
        edges=(Edge("check", "big", when='input.size > 3 && input.kind == "box"'),),
    )
    lines = mermaid(definition).splitlines()
    assert lines[1] == '    check{"check<br/>Is it #quot;big#quot; #lt;#35;1#gt;?"}'
    assert lines[3] == '    check -->|"input.size #gt; 3 && input.kind == #quot;box#quot;"| big'


def test_ids_that_mermaid_reserves_are_renamed() -> None:
    definition = Definition(
        id="wf",
        nodes=(Node("start", "task"), Node("end", "end"), Node("end_", "end")),
        edges=(Edge("start", "end"),),
    )
    lines = mermaid(definition).splitlines()
    assert '    end__(["end"])' in lines
    assert '    end_(["end_"])' in lines
    assert "    start --> end__" in lines
