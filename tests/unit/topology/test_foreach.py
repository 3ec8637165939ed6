"""The foreach node in definitions: its params, their problems, and what they compile to."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from braidflow.topology import Problem, compile_workflow, definition_schema, validate_text
from braidflow.topology.kinds import NODE_TYPES, WORK_TYPES

ITEMS = "${input.candidates}"
INLINE_TASK = {"type": "task", "params": {"handler": "hr.score", "input": {"c": "${item}"}}}


def document(params: dict[str, Any] | None, **node: Any) -> dict[str, Any]:
    """start -> each (a foreach with `params`) -> done."""
    each: dict[str, Any] = {"id": "each", "type": "foreach", **node}
    if params is not None:
        each["params"] = params
    return {
        "id": "wf",
        "variables": {"url": "http://example.test"},
        "nodes": [
            {"id": "start", "type": "task", "params": {"handler": "h.start"}},
            each,
            {"id": "done", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "each"}, {"from": "each", "to": "done"}],
    }


def problems(params: dict[str, Any] | None, **node: Any) -> list[Problem]:
    return validate_text(yaml.safe_dump(document(params, **node), sort_keys=False))


def test_foreach_is_a_node_type_of_the_format() -> None:
    assert "foreach" in NODE_TYPES
    assert "foreach" in definition_schema()["$defs"]["node"]["properties"]["type"]["enum"]


def test_a_foreach_over_a_workflow_compiles_its_items_and_input() -> None:
    params = {"items": ITEMS, "do": "score-candidate", "input": {"who": "${item.name}"}}
    node = compile_workflow(document(params)).nodes["each"]
    assert set(node.params) == {"items", "input"}
    assert node.item_node is None
    scope = {"input": {"candidates": [1, 2]}, "item": {"name": "ada"}, "index": 0}
    assert node.params["items"].render(scope) == [1, 2]
    assert node.params["input"].render(scope) == {"who": "ada"}


def test_an_inline_node_compiles_once_under_the_foreach_id() -> None:
    do = {
        "type": "http",
        "name": "Score one",
        "timeout": "5s",
        "params": {"method": "POST", "url": "${vars.url}/${index}", "body": "${item}"},
    }
    node = compile_workflow(document({"items": ITEMS, "do": do})).nodes["each"]
    inline = node.item_node
    assert inline is not None
    assert (inline.id, inline.type, inline.node.name) == ("each", "http", "Score one")
    assert inline.node.timeout_ms == 5_000
    assert inline.node.retry is None
    assert set(inline.params) == {"url", "body"}
    assert inline.params["url"].render({"vars": {"url": "http://x"}, "index": 3}) == "http://x/3"
    assert (inline.outgoing, inline.inbound) == ((), ())


def test_an_inline_task_without_a_timeout_has_none() -> None:
    node = compile_workflow(document({"items": [1, 2], "do": INLINE_TASK})).nodes["each"]
    assert node.item_node is not None
    assert node.item_node.node.timeout_ms is None
    assert node.item_node.node.params["handler"] == "hr.score"


def test_concurrency_and_continue_on_error_are_valid_params() -> None:
    params = {"items": ITEMS, "do": "wf", "concurrency": 1000, "continue_on_error": True}
    assert problems(params, timeout="10m", retry={"max_attempts": 2}) == []


def test_a_foreach_may_leave_along_an_on_error_edge() -> None:
    doc = document({"items": ITEMS, "do": "wf"})
    doc["nodes"].append({"id": "failed", "type": "end"})
    doc["edges"].append({"from": "each", "to": "failed", "on_error": True})
    assert validate_text(yaml.safe_dump(doc)) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"do": "wf"}, "params: 'items' is a required property"),
        ({"items": ITEMS}, "params: 'do' is a required property"),
        (None, "'params' is a required property"),
        (
            {"items": ITEMS, "do": {"type": "approval", "params": {}}},
            f"params.do.type: 'approval' is not one of {sorted(WORK_TYPES)}",
        ),
        (
            {"items": ITEMS, "do": {**INLINE_TASK, "retry": {"max_attempts": 2}}},
            "params.do: Additional properties are not allowed ('retry' was unexpected)",
        ),
        (
            {"items": ITEMS, "do": {**INLINE_TASK, "id": "inner"}},
            "params.do: Additional properties are not allowed ('id' was unexpected)",
        ),
        (
            {"items": ITEMS, "do": INLINE_TASK, "input": "${item}"},
            "has `params.input` but an inline `do`; the inline node's params are its input",
        ),
        (
            {"items": ITEMS, "do": "wf", "concurrency": 0},
            "params.concurrency: 0 is less than the minimum of 1",
        ),
        (
            {"items": ITEMS, "do": "wf", "concurrency": 1001},
            "params.concurrency: 1001 is greater than the maximum of 1000",
        ),
        (
            {"items": ITEMS, "do": {"type": "task", "params": {"input": 1}}},
            "params.do.params: 'handler' is a required property",
        ),
        (
            {"items": ITEMS, "do": {"type": "http", "params": {"method": "FETCH", "url": "x"}}},
            "params.do.params.method: 'FETCH' is not one of",
        ),
        (
            {"items": ITEMS, "do": {"type": "fetch_page", "params": {"url": "${item}"}}},
            "params.do.params: 'select' is a required property",
        ),
        ({"items": ITEMS, "do": {"type": "task"}}, "params.do: 'params' is a required property"),
        ({"items": ITEMS, "do": "Score It"}, "params.do: 'Score It' does not match"),
        (
            {"items": "abc", "do": "wf"},
            "params.items: 'abc' is neither a list nor a ${...} template",
        ),
        ({"items": 5, "do": "wf"}, "params.items: 5 is not of type 'array', 'string'"),
        (
            {"items": ITEMS, "do": "wf", "continue_on_error": "yes"},
            "params.continue_on_error: 'yes' is not of type 'boolean'",
        ),
    ],
)
def test_each_problem_names_the_foreach(params: dict[str, Any] | None, message: str) -> None:
    found = problems(params)
    assert len(found) == 1, found
    assert found[0].where == "node 'each'"
    assert found[0].message.startswith(message), found[0].message


def test_any_work_kind_may_be_the_inline_node_its_templates_reading_the_item() -> None:
    do = {"type": "fetch_page", "params": {"url": "${item.url}", "select": {"h": "h1"}}}
    node = compile_workflow(document({"items": ITEMS, "do": do})).nodes["each"]
    assert node.item_node is not None and node.item_node.node.type == "fetch_page"
    scope = {"input": {}, "item": {"url": "https://example.test/a"}, "index": 0}
    assert node.item_node.params["url"].render(scope) == "https://example.test/a"
    inline = definition_schema()["$defs"]["foreach_inline"]["properties"]["type"]["enum"]
    assert inline == sorted(WORK_TYPES)


def test_item_and_index_are_not_in_scope_for_the_items_themselves() -> None:
    assert problems({"items": "${item}", "do": "wf"}) == [
        Problem(
            "node 'each'",
            "params.items: `item`: unknown name 'item'"
            " (in scope: dept, event, execution, input, nodes, parent, vars)",
        )
    ]


def test_item_and_index_are_in_scope_for_what_is_rendered_per_item() -> None:
    inline = {"type": "task", "params": {"handler": "h", "input": ["${item}", "${index}"]}}
    assert problems({"items": ITEMS, "do": inline}) == []
    assert problems({"items": ITEMS, "do": "wf", "input": {"n": "${index}"}}) == []


def test_an_unknown_name_in_an_inline_param_is_named_with_its_path() -> None:
    inline = {"type": "task", "params": {"handler": "h", "input": "${itme}"}}
    assert problems({"items": ITEMS, "do": inline}) == [
        Problem(
            "node 'each'",
            "params.do.params.input: `itme`: unknown name 'itme' (in scope: dept, event,"
            " execution, index, input, item, nodes, parent, vars)",
        )
    ]


def test_per_item_templates_are_checked_for_nodes_and_variables() -> None:
    found = problems({"items": ITEMS, "do": "wf", "input": "${nodes.nope.output}"})
    assert found == [
        Problem("node 'each'", "params.input: `nodes.nope.output`: unknown node 'nope'")
    ]
    inline = {"type": "http", "params": {"method": "GET", "url": "${vars.missing}"}}
    assert problems({"items": ITEMS, "do": inline}) == [
        Problem("node 'each'", "params.do.params.url: `vars.missing`: unknown variable 'missing'")
    ]


def test_a_broken_template_in_the_items_is_named() -> None:
    assert problems({"items": "${input.candidates", "do": "wf"}) == [
        Problem("node 'each'", "params.items: unclosed `${` in '${input.candidates'")
    ]


def test_a_foreach_takes_one_outgoing_edge() -> None:
    doc = document({"items": ITEMS, "do": "wf"})
    doc["nodes"].append({"id": "other", "type": "end"})
    doc["edges"].append({"from": "each", "to": "other"})
    assert validate_text(yaml.safe_dump(doc)) == [
        Problem(
            "node 'each'",
            "a foreach node has 2 outgoing edges; only decision and parallel nodes branch",
        )
    ]
