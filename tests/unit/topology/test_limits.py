"""Definitions, bodies and events are parsed within the limits of braidflow.topology.limits,
and each refusal names its limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from braidflow.cli import main
from braidflow.schemas.cloudevents import from_kafka, from_structured
from braidflow.topology import DefinitionError, load_workflow, validate_text
from braidflow.topology.limits import (
    MAX_ALIAS_VALUES,
    MAX_DEPTH,
    LimitError,
    check_depth,
    parse_json,
    too_deep,
)

MINIMAL = """
id: wf
nodes:
  - {id: a, type: transform, params: {set: {x: 1}}}
  - {id: done, type: end}
edges:
  - {from: a, to: done}
"""


def nested(depth: int) -> Any:
    """Arrays nested `depth` deep, built without recursion."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


def alias_bomb(levels: int = 9, references: int = 9) -> str:
    """Nine levels of nine references each, as a task's input: 387 million values expanded."""
    lines = ["id: bomb", "variables:", '  a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * references)
        lines.append(f"  a{level}: &a{level} [{refs}]")
    task = f"{{handler: test.echo, input: *a{levels}}}"
    lines += ["nodes:", f"  - {{id: a, type: task, params: {task}}}", "  - {id: done, type: end}"]
    return "\n".join([*lines, "edges:", "  - {from: a, to: done}"])


def definition_error(text: str | bytes) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        load_workflow(text)
    return caught.value


# --- depth -------------------------------------------------------------------------


def test_arrays_and_objects_nest_up_to_the_limit() -> None:
    assert not too_deep(nested(MAX_DEPTH))
    assert too_deep(nested(MAX_DEPTH + 1))
    assert not too_deep({"a": {"b": "scalars add no depth"}}, limit=2)
    assert too_deep({"a": {"b": {}}}, limit=2)


def test_a_value_that_contains_itself_is_too_deep() -> None:
    looped: list[Any] = []
    looped.append(looped)
    assert too_deep(looped)


def test_json_nested_100_000_deep_is_refused_naming_the_limit() -> None:
    with pytest.raises(LimitError, match=f"deeper than the limit of {MAX_DEPTH}") as caught:
        parse_json(deep_text(100_000), "the body")
    assert caught.value.status == 422
    assert str(caught.value).startswith("the body ")


def test_json_just_over_the_depth_limit_is_refused_and_at_it_is_read() -> None:
    assert parse_json(deep_text(MAX_DEPTH), "x") == nested(MAX_DEPTH)
    with pytest.raises(LimitError):
        parse_json(deep_text(MAX_DEPTH + 1), "x")
    with pytest.raises(LimitError):
        check_depth(nested(MAX_DEPTH + 1), "x")


def test_json_that_is_not_json_is_still_a_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json("{", "the body")


# --- definitions --------------------------------------------------------------------


def test_a_yaml_alias_bomb_is_refused_before_it_expands() -> None:
    error = definition_error(alias_bomb())
    assert error.limit is not None and error.limit.status == 422
    assert f"more than the limit of {MAX_ALIAS_VALUES} values" in str(error.limit)
    assert [p.where for p in error.problems] == ["definition"]


def test_a_few_yaml_aliases_are_fine() -> None:
    assert validate_text(MINIMAL + "variables: {a: &v [1, 2], b: *v, c: *v}\n") == []


def test_a_yaml_alias_inside_its_own_anchor_is_refused() -> None:
    error = definition_error(MINIMAL + "variables: &loop {again: *loop}\n")
    assert error.limit is not None
    assert "refers to a value that contains it" in str(error)


@pytest.mark.parametrize(
    "text",
    [
        deep_text(50_000),
        "id: wf\nvariables: {a: " + deep_text(50_000) + "}\n",
        "id: wf\nvariables:\n  a: " + deep_text(MAX_DEPTH + 1) + "\n",
    ],
    ids=["json", "yaml-flow", "yaml-just-over"],
)
def test_a_definition_nested_too_deep_is_refused_naming_the_limit(text: str) -> None:
    error = definition_error(text)
    assert error.limit is not None and error.limit.status == 422
    assert f"deeper than the limit of {MAX_DEPTH}" in str(error)


def test_aliases_cannot_nest_a_definition_past_the_depth_limit() -> None:
    # Each part is within the limit as composed; the alias puts one inside the other.
    anchored = f"variables: {{a: &h {deep_text(60)}, b: {'[' * 50}*h{']' * 50}}}\n"
    error = definition_error(MINIMAL + anchored)
    assert f"deeper than the limit of {MAX_DEPTH}" in str(error)
    assert validate_text(MINIMAL + f"variables: {{a: &h {deep_text(60)}, b: [*h]}}\n") == []


def test_size_is_413_and_node_count_422() -> None:
    too_big = definition_error(MINIMAL + "description: " + "x" * 1024 * 1024 + "\n")
    assert too_big.limit is not None and too_big.limit.status == 413
    nodes = [{"id": f"n{i}", "type": "end"} for i in range(1001)]
    too_many = definition_error(json.dumps({"id": "wf", "nodes": nodes, "edges": []}))
    assert too_many.limit is not None and too_many.limit.status == 422
    assert "1001 nodes, over the limit of 1000" in str(too_many)


def test_an_ordinary_problem_has_no_limit() -> None:
    assert definition_error(MINIMAL.replace("transform", "tansform")).limit is None


# --- events ---------------------------------------------------------------------------


def structured(data: str) -> str:
    return '{"specversion": "1.0", "id": "1", "source": "/s", "type": "t.x", "data": ' + data + "}"


def test_a_structured_event_nested_too_deep_is_refused_naming_the_limit() -> None:
    for depth in (MAX_DEPTH, 100_000):
        with pytest.raises(LimitError, match="the event nests"):
            from_structured(structured(deep_text(depth)))
    assert from_structured(structured(deep_text(MAX_DEPTH - 2))).data == nested(MAX_DEPTH - 2)


def test_a_kafka_record_nested_too_deep_is_refused_in_either_mode() -> None:
    deep = deep_text(100_000).encode()
    binary = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"1"),
        ("ce_source", b"/s"),
        ("ce_type", b"t.x"),
    ]
    with pytest.raises(LimitError, match="the event's data nests"):
        from_kafka([*binary, ("content-type", b"application/json")], deep)
    with pytest.raises(LimitError, match="the event's data nests"):
        from_kafka(binary, deep)
    with pytest.raises(LimitError, match="the event nests"):
        from_kafka([], structured(deep_text(100_000)).encode())
    with pytest.raises(LimitError, match="the event nests"):
        from_kafka(
            [("content-type", b"application/cloudevents+json")],
            structured(deep_text(100_000)).encode(),
        )


def test_the_cli_validate_refuses_an_alias_bomb_naming_the_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    result = CliRunner().invoke(main, ["validate", str(bomb)])
    assert result.exit_code == 1
    expected = f"definition: YAML aliases expand to more than the limit of {MAX_ALIAS_VALUES}"
    assert result.output == f"{bomb}: {expected} values\n"
