"""A diff of two versions: the texts line by line, and which nodes were added, removed, changed."""

from __future__ import annotations

from braidflow.topology import load_workflow
from braidflow.topology.version_diff import node_changes, text_diff

OLD = """id: shop
nodes:
  - {id: quote, type: task, params: {handler: quote}}
  - {id: ship, type: task, params: {handler: ship}}
  - {id: done, type: end}
edges:
  - {from: quote, to: ship}
  - {from: ship, to: done}
"""
NEW = """id: shop
nodes:
  - {id: quote, type: task, params: {handler: quote.v2}}
  - {id: ship, type: task, params: {handler: ship}}
  - {id: mail, type: task, params: {handler: mail}}
  - {id: done, type: end}
edges:
  - {from: quote, to: ship}
  - {from: ship, to: mail}
  - {from: mail, to: done}
"""


def test_the_text_diff_is_a_unified_diff_naming_both_versions() -> None:
    diff = text_diff(OLD, NEW, "shop@1", "shop@2")
    assert diff.startswith("--- shop@1\n+++ shop@2\n@@ ")
    assert "-  - {id: quote, type: task, params: {handler: quote}}\n" in diff
    assert "+  - {id: mail, type: task, params: {handler: mail}}\n" in diff


def test_equal_texts_have_an_empty_diff() -> None:
    assert text_diff(OLD, OLD, "shop@1", "shop@3") == ""


def test_a_last_line_without_a_newline_does_not_run_into_the_next() -> None:
    assert text_diff("a", "b", "x@1", "x@2").splitlines()[-2:] == ["-a", "+b"]


def test_nodes_added_removed_and_changed_by_params_or_by_an_edge_leaving_them() -> None:
    changes = node_changes(load_workflow(OLD).definition, load_workflow(NEW).definition)
    assert changes.added == ("mail",)
    assert changes.removed == ()
    # quote: its params; ship: its edge now leads to mail. done is untouched.
    assert changes.changed == ("quote", "ship")
    back = node_changes(load_workflow(NEW).definition, load_workflow(OLD).definition)
    assert back.removed == ("mail",) and back.added == ()
