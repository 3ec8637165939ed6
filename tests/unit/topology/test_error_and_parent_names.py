"""Expressions that read a node's error (`nodes.<id>.error`) or a child's `parent`, and where
they may not."""

from __future__ import annotations

from onboarding_definition import ONBOARDING, edited, node

from braidflow.topology import Problem, load_workflow, validate_text

# Expressions: nodes.<id>.error and parent


def test_a_node_on_the_error_path_reads_the_error() -> None:
    note = load_workflow(ONBOARDING).nodes["note_failure"]
    scope = {"nodes": {"provision": {"output": None, "error": {"type": "Timeout", "message": "x"}}}}
    assert note.params["set"].render(scope) == {"reason": "x"}


def test_a_child_reads_its_parent_context() -> None:
    failed = load_workflow(ONBOARDING).nodes["order_failed"]
    parent = {"input": {"who": "ada"}, "vars": {"team": "it"}, "event": None}
    scope = {"nodes": {"order": {"error": None}}, "parent": parent}
    assert failed.params["output"].render(scope) == {"error": None, "from": {"team": "it"}}


def test_a_condition_may_ask_whether_there_is_a_parent() -> None:
    text = """
id: wf
nodes:
  - {id: check, type: decision}
  - {id: child, type: end, params: {output: {rush: "${parent.input.rush}"}}}
  - {id: alone, type: end}
edges:
  - {from: check, to: child, when: "parent != null && parent.input.rush"}
  - {from: check, to: alone, default: true}
"""
    condition = load_workflow(text).nodes["check"].outgoing[0].when
    assert condition is not None
    assert condition.evaluate({"parent": None}) is False
    assert condition.evaluate({"parent": {"input": {"rush": True}}}) is True


def test_an_unknown_name_lists_parent_among_the_names_in_scope() -> None:
    text = edited(lambda d: node(d, "cool_off").update(params={"until": "${settings.when}"}))
    assert validate_text(text) == [
        Problem(
            "node 'cool_off'",
            "params.until: `settings.when`: unknown name 'settings' (in scope: dept, event,"
            " execution, input, nodes, parent, vars)",
        )
    ]


def test_a_trigger_condition_cannot_read_parent() -> None:
    text = edited(lambda d: d.update(triggers=[{"event": {"types": ["x"], "when": "parent.ok"}}]))
    assert validate_text(text) == [
        Problem(
            "trigger #1", "event.when: `parent.ok`: unknown name 'parent' (in scope: event, vars)"
        )
    ]
