"""on_error edges: which nodes they may leave, what they may carry, and the branch points they
make in graph analysis and flowcharts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from onboarding_definition import ONBOARDING, edge, edited, node

from braidflow.cli import main
from braidflow.topology import Problem, load_workflow, validate_text
from braidflow.topology.kinds import ERROR_EDGE_SOURCES
from braidflow.topology.mermaid import mermaid

*_OTHERS, _LAST = sorted(ERROR_EDGE_SOURCES)
ONLY_FAILING_NODES = f"`on_error` edges leave only {', '.join(_OTHERS)} or {_LAST} nodes"

# Graph analysis: an on_error edge makes a branch point


def test_a_node_with_an_on_error_edge_is_a_branch_point_whose_paths_converge_at_the_join() -> None:
    graph = load_workflow(ONBOARDING).graph
    assert graph.branch_points == ["provision", "order"]
    assert graph.convergence_points == ["settled"]
    assert graph.leaves == ["done", "order_failed"]
    assert graph.immediate_post_dominators["provision"] == "settled"
    assert graph.immediate_post_dominators["order"] is None


def test_inspect_shows_on_error_branches_and_labels_them(tmp_path: Path) -> None:
    path = tmp_path / "onboarding.yaml"
    path.write_text(ONBOARDING)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "branch points: provision, order" in lines
    assert "convergence points: settled" in lines
    assert "    provision -->|on error| note_failure" in lines


def test_the_flowchart_labels_on_error_edges_and_names_the_new_types() -> None:
    lines = mermaid(load_workflow(ONBOARDING)).splitlines()
    assert "    provision --> settled" in lines
    assert "    provision -->|on error| note_failure" in lines
    assert "    order -->|on error| order_failed" in lines
    assert '    ask["ask (approval)"]' in lines
    assert '    cool_off["cool_off (delay)"]' in lines
    assert '    order["order (subworkflow)"]' in lines


# on_error edges


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("task", {"handler": "h.work"}),
        ("http", {"method": "GET", "url": "http://example.test"}),
        ("fetch_page", {"url": "http://example.test", "select": {"title": "h1"}}),
        ("llm", {"connection": "c", "model": "m", "prompt": "p"}),
        ("classify", {"connection": "c", "model": "m", "text": "t", "labels": ["a", "b"]}),
        ("extract", {"connection": "c", "model": "m", "text": "t", "schema": {"type": "object"}}),
        ("summarize", {"connection": "c", "model": "m", "text": "t"}),
        (
            "email",
            {"connection": "c", "from": "a@x.test", "to": "b@x.test", "subject": "s", "text": "t"},
        ),
        ("code", {"source": "def main(input):\n    return input\n"}),
        ("transform", {"set": {"a": 1}}),
        ("wait_event", {"type": "x.happened"}),
        ("delay", {"for": "1s"}),
        ("approval", {}),
        ("subworkflow", {"workflow": "child"}),
    ],
)
def test_every_node_that_can_fail_may_have_an_on_error_edge(
    kind: str, params: dict[str, Any]
) -> None:
    def change(doc: dict[str, Any]) -> None:
        source = node(doc, "provision")
        source.clear()
        source.update(id="provision", type=kind, params=params)

    assert validate_text(edited(change)) == []


@pytest.mark.parametrize(
    ("source", "extra"),
    [
        ("decision", []),
        ("parallel", []),
        (
            "publish",
            [
                Problem(
                    "node 'src'",
                    "a publish node has 2 outgoing edges; only decision and parallel nodes branch",
                )
            ],
        ),
    ],
)
def test_an_on_error_edge_leaves_only_nodes_that_can_fail(
    source: str, extra: list[Problem]
) -> None:
    params = {"publish": {"type": "x.done"}}.get(source, {})
    text = f"""
id: wf
nodes:
  - {{id: src, type: {source}, params: {params}}}
  - {{id: done, type: end}}
  - {{id: failed, type: end}}
edges:
  - {{from: src, to: done{", default: true" if source == "decision" else ""}}}
  - {{from: src, to: failed, on_error: true}}
"""
    assert validate_text(text) == [
        Problem(
            "edge 'src -> failed'",
            ONLY_FAILING_NODES,
        ),
        *extra,
    ]


def test_an_on_error_edge_out_of_an_end_is_refused() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "after", "type": "end"})
        doc["edges"].append({"from": "done", "to": "after", "on_error": True})

    assert validate_text(edited(change)) == [
        Problem(
            "edge 'done -> after'",
            ONLY_FAILING_NODES,
        ),
        Problem("node 'done'", "is an end but has outgoing edges"),
    ]


def test_a_node_may_have_only_one_on_error_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "also_failed", "type": "end"})
        doc["edges"].append({"from": "order", "to": "also_failed", "on_error": True})

    assert validate_text(edited(change)) == [
        Problem("node 'order'", "a subworkflow node may have only one on_error edge")
    ]


def test_a_node_needs_a_normal_edge_besides_its_on_error_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].remove(node(doc, "done"))
        doc["edges"].remove(edge(doc, "order", "done"))

    assert validate_text(edited(change)) == [
        Problem(
            "node 'order'", "a subworkflow node needs one outgoing edge besides its on_error edge"
        )
    ]


def test_a_node_does_not_branch_besides_its_on_error_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "also", "type": "end"})
        doc["edges"].append({"from": "order", "to": "also"})

    assert validate_text(edited(change)) == [
        Problem(
            "node 'order'",
            "a subworkflow node has 2 outgoing edges besides its on_error edge; only decision"
            " and parallel nodes branch",
        )
    ]


def test_an_on_error_edge_takes_no_condition_default_or_timeout() -> None:
    text = edited(
        lambda d: edge(d, "order", "order_failed").update(when="true", default=True, timeout=True)
    )
    assert validate_text(text) == [
        Problem("edge 'order -> order_failed'", "an on_error edge takes no `when`"),
        Problem("edge 'order -> order_failed'", "an on_error edge takes no `default`"),
        Problem("edge 'order -> order_failed'", "an on_error edge takes no `timeout`"),
    ]


def test_false_flags_on_an_on_error_edge_say_nothing() -> None:
    text = edited(lambda d: edge(d, "order", "order_failed").update(default=False, timeout=False))
    assert validate_text(text) == []


def test_a_non_boolean_on_error_flag_is_a_schema_problem() -> None:
    text = edited(lambda d: edge(d, "order", "order_failed").update(on_error="yes"))
    assert Problem(
        "edge 'order -> order_failed'", "on_error: 'yes' is not of type 'boolean'"
    ) in validate_text(text)


WAIT_WITH_BOTH = """
id: wf
nodes:
  - id: wait
    type: wait_event
    params: {type: parcel.delivered}
    timeout: 3d
  - {id: delivered, type: end}
  - {id: lost, type: end}
  - {id: broken, type: end}
edges:
  - {from: wait, to: delivered}
  - {from: wait, to: lost, timeout: true}
  - {from: wait, to: broken, on_error: true}
"""


def test_a_wait_event_may_have_a_timeout_edge_and_an_on_error_edge() -> None:
    workflow = load_workflow(WAIT_WITH_BOTH)
    assert [(e.target, e.timeout, e.on_error) for e in workflow.nodes["wait"].outgoing] == [
        ("delivered", False, False),
        ("lost", True, False),
        ("broken", False, True),
    ]
    assert "    wait -->|on error| broken" in mermaid(workflow).splitlines()


def test_a_wait_event_needs_a_normal_edge_besides_its_timeout_and_on_error_edges() -> None:
    def change(doc: dict[str, Any]) -> None:
        del doc["nodes"][1]
        del doc["edges"][0]

    assert validate_text(edited(change, WAIT_WITH_BOTH)) == [
        Problem(
            "node 'wait'",
            "a wait_event node needs one outgoing edge besides its timeout and on_error edges",
        )
    ]


def test_timeout_edges_still_leave_only_a_wait_event() -> None:
    text = edited(lambda d: edge(d, "order", "order_failed").update(on_error=False, timeout=True))
    assert validate_text(text) == [
        Problem("edge 'order -> order_failed'", "`timeout` edges leave only wait_event nodes"),
        Problem(
            "node 'order'",
            "a subworkflow node has 2 outgoing edges; only decision and parallel nodes branch",
        ),
    ]
