"""Edges out of a classify node that name labels: validation refuses a label the node does
not have, a label on an edge out of another kind, a label named twice, and labels that would
lead nowhere, naming the edge or the node."""

from __future__ import annotations

import re

import pytest

from braidflow.topology import DefinitionError, load_workflow
from braidflow.topology.layout import layout
from braidflow.topology.loading import Problem
from braidflow.topology.mermaid import mermaid
from braidflow.topology.workflow import validate_text

TRIAGE = """
id: triage
nodes:
  - id: sort
    type: classify
    params:
      connection: local
      model: tiny-1
      text: "${{input.text}}"
      labels: {labels}
{ends}
edges:
{edges}
"""


def triage(edges: str, labels: str = "[bug, question, praise]") -> str:
    """The triage workflow with `edges` out of its classify node, each to an end of its own."""
    targets = dict.fromkeys(re.findall(r"to: (\w+)", edges))
    ends = "\n".join(f"  - {{id: {target}, type: end}}" for target in targets)
    return TRIAGE.format(labels=labels, edges=edges, ends=ends)


def test_each_label_with_its_edge_is_valid_and_compiled_on_the_edge() -> None:
    wf = load_workflow(
        triage(
            "  - {from: sort, to: fix, label: bug}\n"
            "  - {from: sort, to: answer, label: question}\n"
            "  - {from: sort, to: other, label: praise}\n"
        )
    )
    assert [(e.target, e.label) for e in wf.nodes["sort"].outgoing] == [
        ("fix", "bug"),
        ("answer", "question"),
        ("other", "praise"),
    ]


def test_a_default_edge_takes_the_labels_no_edge_names() -> None:
    text = triage(
        "  - {from: sort, to: fix, label: bug}\n  - {from: sort, to: other, default: true}\n"
    )
    assert validate_text(text) == []


def test_labels_given_with_their_meanings_name_edges_too() -> None:
    labels = "{bug: something is broken, question: someone asks how}"
    text = triage(
        "  - {from: sort, to: fix, label: bug}\n  - {from: sort, to: answer, label: question}\n",
        labels,
    )
    assert validate_text(text) == []


def test_one_unlabelled_edge_is_taken_whatever_the_label() -> None:
    assert validate_text(triage("  - {from: sort, to: fix}\n")) == []


def test_a_label_the_node_does_not_have_is_refused_naming_the_edge() -> None:
    text = triage(
        "  - {from: sort, to: fix, label: bug}\n  - {from: sort, to: other, label: rant}\n"
        "  - {from: sort, to: answer, default: true}\n"
    )
    assert validate_text(text) == [
        Problem(
            "edge 'sort -> other'",
            "label 'rant' is not one of node 'sort''s labels (bug, question, praise)",
        )
    ]


def test_labels_without_an_edge_and_no_default_are_refused_naming_them() -> None:
    text = triage("  - {from: sort, to: fix, label: bug}\n  - {from: sort, to: answer}\n")
    assert validate_text(text) == [
        Problem(
            "edge 'sort -> answer'",
            "out of a classify node whose edges name labels, an edge needs a `label`"
            " or `default: true`",
        ),
        Problem(
            "node 'sort'",
            "no edge for the labels question, praise: give each an edge with its `label`,"
            " or add an edge with `default: true`",
        ),
    ]


def test_a_label_named_by_two_edges_is_refused() -> None:
    text = triage(
        "  - {from: sort, to: fix, label: bug}\n  - {from: sort, to: answer, label: bug}\n"
        "  - {from: sort, to: other, default: true}\n"
    )
    assert validate_text(text) == [
        Problem("edge 'sort -> answer'", "label 'bug' is named by another edge out of 'sort'")
    ]


def test_a_label_on_an_edge_out_of_another_kind_is_refused() -> None:
    text = """
id: labelled-task
nodes:
  - {id: work, type: task, params: {handler: h.work}}
  - {id: done, type: end}
edges:
  - {from: work, to: done, label: bug}
"""
    assert validate_text(text) == [
        Problem("edge 'work -> done'", "`label` is only for edges out of a classify node")
    ]


def test_a_labelled_edge_takes_no_when_or_default() -> None:
    text = triage(
        "  - {from: sort, to: fix, label: bug, default: true}\n"
        "  - {from: sort, to: answer, label: question}\n"
        "  - {from: sort, to: other, label: praise}\n"
    )
    assert Problem("edge 'sort -> fix'", "an edge with a `label` takes no `default`") in (
        validate_text(text)
    )


def test_unlabelled_edges_out_of_a_classify_do_not_branch() -> None:
    text = triage("  - {from: sort, to: fix}\n  - {from: sort, to: answer}\n")
    assert validate_text(text) == [
        Problem(
            "node 'sort'",
            "a classify node has 2 outgoing edges; only decision and parallel nodes branch",
        )
    ]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("[bug]", "params.labels"),
        ("[bug, bug]", "params.labels: 'bug' is given twice"),
        ("bug", "params.labels"),
    ],
)
def test_labels_are_two_or_more_distinct_names(labels: str, message: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        load_workflow(triage("  - {from: sort, to: fix}\n", labels))
    assert "node 'sort'" in str(refused.value) and message in str(refused.value)


def test_an_extract_schema_must_describe_an_object_of_fields() -> None:
    text = """
id: fields
nodes:
  - id: read
    type: extract
    params: {connection: local, model: tiny-1, text: "${input.text}", schema: {type: string}}
  - {id: done, type: end}
edges:
  - {from: read, to: done}
"""
    assert validate_text(text) == [
        Problem("node 'read'", 'params.schema: the fields\' schema needs "type": "object"')
    ]
    broken = text.replace("{type: string}", "{type: object, properties: {a: {type: texte}}}")
    [problem] = validate_text(broken)
    assert problem.message.startswith("params.schema: invalid JSON Schema at properties.a.type")


def test_the_flowchart_and_the_layout_show_each_edge_by_its_label() -> None:
    wf = load_workflow(
        triage(
            "  - {from: sort, to: fix, label: bug}\n  - {from: sort, to: other, default: true}\n"
        )
    )
    lines = mermaid(wf).splitlines()
    assert '    sort -->|"bug"| fix' in lines
    assert "    sort -->|default| other" in lines
    assert [e.label for e in layout(wf.definition).edges] == ["bug", "default"]
