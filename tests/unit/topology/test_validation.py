"""Validation names the node, edge or line at fault, for every problem, in one pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from braidflow.topology import Problem, validate_text

EXAMPLE = Path(__file__).parents[3] / "examples" / "new-hire-approval.yaml"


def minimal(change: Callable[[dict[str, Any]], object] | None = None) -> str:
    """A valid two-node workflow as YAML, after `change` has edited it in place."""
    doc: dict[str, Any] = {
        "id": "wf",
        "variables": {"url": "http://example.test"},
        "nodes": [
            {"id": "start", "type": "task", "params": {"handler": "h.start"}},
            {"id": "done", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "done"}],
    }
    if change is not None:
        change(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["id"] == node_id)


def assert_problem(problems: list[Problem], where: str, fragment: str) -> None:
    matching = [p for p in problems if p.where == where and fragment in p.message]
    assert matching, f"no problem at {where!r} mentioning {fragment!r} in {problems}"


def test_the_minimal_workflow_is_valid() -> None:
    assert validate_text(minimal()) == []


def test_the_format_example_is_valid() -> None:
    assert validate_text(EXAMPLE.read_bytes()) == []


def test_yaml_syntax_error_gives_line_and_column() -> None:
    problems = validate_text("id: wf\nnodes: [\n  - a\n")
    assert_problem(problems, "line 3, column 3", "invalid YAML")


def test_json_syntax_error_gives_line_and_column() -> None:
    problems = validate_text('{"id": "wf",\n "nodes": [,]}')
    assert_problem(problems, "line 2, column 12", "invalid JSON")


def test_duplicate_node_ids() -> None:
    text = minimal(lambda d: d["nodes"].append({"id": "done", "type": "end"}))
    assert_problem(validate_text(text), "node 'done'", "duplicate id")


def test_unknown_node_type() -> None:
    text = minimal(lambda d: node(d, "start").update(type="sleep"))
    assert_problem(validate_text(text), "node 'start'", "unknown type 'sleep'")


def test_task_without_handler() -> None:
    text = minimal(lambda d: node(d, "start").update(params={"input": {}}))
    assert_problem(validate_text(text), "node 'start'", "'handler' is a required property")


def test_unknown_param() -> None:
    text = minimal(lambda d: node(d, "start")["params"].update(retries=3))
    assert_problem(validate_text(text), "node 'start'", "'retries' was unexpected")


def test_mistyped_handler() -> None:
    text = minimal(lambda d: node(d, "start")["params"].update(handler=5))
    assert_problem(validate_text(text), "node 'start'", "params.handler: 5 is not of type 'string'")


def test_mistyped_wait_for() -> None:
    text = """
id: wf
nodes:
  - {id: split, type: parallel}
  - {id: a, type: task, params: {handler: h.a}}
  - {id: b, type: task, params: {handler: h.b}}
  - {id: both, type: join, params: {wait_for: some}}
  - {id: done, type: end}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: a, to: both}
  - {from: b, to: both}
  - {from: both, to: done}
"""
    assert_problem(validate_text(text), "node 'both'", "'some' is not `all`, `any`")


def test_edge_to_unknown_node() -> None:
    text = minimal(lambda d: d["edges"].append({"from": "start", "to": "ghost"}))
    assert_problem(validate_text(text), "edge 'start -> ghost'", "to: 'ghost' is not a node")


def test_a_cycle_through_every_node_leaves_no_root() -> None:
    text = minimal(lambda d: d["edges"].append({"from": "done", "to": "start"}))
    assert_problem(validate_text(text), "definition", "has no root")


def test_several_roots() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "other", "type": "task", "params": {"handler": "h.other"}})
        doc["edges"].append({"from": "other", "to": "done"})

    assert_problem(validate_text(minimal(change)), "definition", "has 2 roots (start, other)")


def test_unreachable_node() -> None:
    # With a single root, only a loop can hold nodes that the root never reaches.
    text = """
id: wf
nodes:
  - {id: start, type: task, params: {handler: h.start}}
  - {id: island, type: task, params: {handler: h.island}}
  - {id: check, type: decision}
  - {id: done, type: end}
edges:
  - {from: start, to: done}
  - {from: island, to: check}
  - {from: check, to: island, when: "true"}
  - {from: check, to: done, default: true}
"""
    problems = validate_text(text)
    assert_problem(problems, "node 'island'", "is unreachable from the root 'start'")
    assert_problem(problems, "node 'check'", "is unreachable")


def test_node_that_cannot_reach_an_end() -> None:
    text = """
id: wf
nodes:
  - {id: check, type: decision}
  - {id: astray, type: task, params: {handler: h.astray}}
  - {id: stuck, type: transform, params: {set: {a: 1}}}
  - {id: done, type: end}
edges:
  - {from: check, to: astray, when: "true"}
  - {from: check, to: done, default: true}
  - {from: astray, to: stuck}
"""
    problems = validate_text(text)
    assert_problem(problems, "node 'astray'", "cannot reach an end")
    assert_problem(problems, "node 'stuck'", "has no outgoing edge and is not an end")


def test_cycle() -> None:
    text = """
id: wf
nodes:
  - {id: start, type: task, params: {handler: h.start}}
  - {id: work, type: task, params: {handler: h.work}}
  - {id: again, type: decision}
  - {id: done, type: end}
edges:
  - {from: start, to: work}
  - {from: work, to: again}
  - {from: again, to: work, when: "true"}
  - {from: again, to: done, default: true}
"""
    assert_problem(validate_text(text), "node 'work'", "is on a cycle: work -> again -> work")


def test_join_with_a_single_inbound_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].insert(1, {"id": "gather", "type": "join"})
        doc["edges"] = [{"from": "start", "to": "gather"}, {"from": "gather", "to": "done"}]

    assert_problem(
        validate_text(minimal(change)), "node 'gather'", "a join needs at least two inbound edges"
    )


def test_decision_without_default_edge() -> None:
    text = """
id: wf
nodes:
  - {id: check, type: decision}
  - {id: approve, type: end}
  - {id: refuse, type: end}
edges:
  - {from: check, to: approve, when: "input.ok"}
  - {from: check, to: refuse, when: "!input.ok"}
"""
    assert_problem(validate_text(text), "node 'check'", "needs an edge with `default: true`")


def test_task_with_several_outgoing_edges() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "also_done", "type": "end"})
        doc["edges"].append({"from": "start", "to": "also_done"})

    assert_problem(
        validate_text(minimal(change)), "node 'start'", "a task node has 2 outgoing edges"
    )


def test_condition_that_does_not_compile() -> None:
    text = """
id: wf
nodes:
  - {id: check, type: decision}
  - {id: approve, type: end}
  - {id: refuse, type: end}
edges:
  - {from: check, to: approve, when: "input.ok &&"}
  - {from: check, to: refuse, default: true}
"""
    problems = validate_text(text)
    assert_problem(problems, "edge 'check -> approve'", "when: ")
    assert_problem(problems, "edge 'check -> approve'", "Syntax error")


def test_template_that_does_not_compile() -> None:
    text = minimal(lambda d: node(d, "start")["params"].update(input={"n": "${1 +}"}))
    assert_problem(validate_text(text), "node 'start'", "params.input: ")


def test_expression_naming_an_unknown_node() -> None:
    text = minimal(
        lambda d: node(d, "done").update(params={"output": {"x": "${nodes.ghost.output}"}})
    )
    assert_problem(validate_text(text), "node 'done'", "unknown node 'ghost'")


def test_expression_reading_a_node_that_runs_later() -> None:
    text = minimal(lambda d: node(d, "start")["params"].update(input="${nodes.done.output}"))
    assert_problem(validate_text(text), "node 'start'", "node 'done' does not run before 'start'")


def test_unknown_top_level_name() -> None:
    text = minimal(lambda d: node(d, "start")["params"].update(input={"u": "${config.token}"}))
    assert_problem(validate_text(text), "node 'start'", "unknown name 'config'")


def test_undeclared_variable() -> None:
    text = minimal(lambda d: node(d, "start")["params"].update(input={"u": "${vars.x}"}))
    assert_problem(validate_text(text), "node 'start'", "unknown variable 'x'")


def test_comprehension_variables_are_not_unknown_names() -> None:
    text = minimal(
        lambda d: node(d, "start")["params"].update(input="${input.xs.exists(x, x > 1)}")
    )
    assert validate_text(text) == []


def test_invalid_input_schema() -> None:
    text = minimal(lambda d: d.update(input={"type": 12}))
    assert_problem(validate_text(text), "definition", "input: invalid JSON Schema at type")


@pytest.mark.parametrize("count", [1001, 5000])
def test_more_than_a_thousand_nodes(count: int) -> None:
    nodes = [{"id": f"n{i}", "type": "task", "params": {"handler": "h"}} for i in range(count)]
    text = json.dumps({"id": "wf", "nodes": nodes, "edges": []})
    assert_problem(validate_text(text), "definition", f"has {count} nodes, over the limit of 1000")


def test_more_than_one_mebibyte() -> None:
    text = minimal(lambda d: d.update(description="x" * 1024 * 1024))
    assert_problem(validate_text(text), "definition", "over the limit of 1048576")


def test_several_problems_are_found_in_one_pass() -> None:
    def change(doc: dict[str, Any]) -> None:
        node(doc, "start")["params"]["retries"] = 3
        node(doc, "done")["params"] = {"output": {"u": "${vars.missing}"}}
        doc["edges"].append({"from": "start", "to": "ghost"})

    problems = validate_text(minimal(change))
    assert_problem(problems, "node 'start'", "'retries' was unexpected")
    assert_problem(problems, "node 'done'", "unknown variable 'missing'")
    assert_problem(problems, "edge 'start -> ghost'", "'ghost' is not a node")
    assert len(problems) == 3
