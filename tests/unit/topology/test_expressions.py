"""CEL conditions and `${...}` templates."""

from __future__ import annotations

from typing import Any

import pytest

from braidflow.topology.expressions import (
    ExpressionError,
    compile_expression,
    compile_value,
    parse_template,
)

SCOPE: dict[str, Any] = {
    "input": {"employee": "ada", "age": 36, "tags": ["new", "remote"], "team": {"name": "it"}},
    "vars": {"url": "http://example.test"},
    "nodes": {"hr": {"output": {"ok": True}}, "it": {"output": {"ok": False}}},
}


def render(text: str) -> Any:
    template = parse_template(text)
    assert template is not None
    return template.render(SCOPE)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("nodes.hr.output.ok", True),
        ("nodes.hr.output.ok && nodes.it.output.ok", False),
        ("input.age >= 18 && input.employee == 'ada'", True),
        ("'remote' in input.tags", True),
        ("input.tags.exists(t, t == 'onsite')", False),
    ],
)
def test_conditions_evaluate(condition: str, expected: bool) -> None:
    assert compile_expression(condition).evaluate(SCOPE) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${input.team}", {"name": "it"}),
        ("${input.age + 1}", 37),
        ("${input.tags}", ["new", "remote"]),
        ("${ {'who': input.employee} }", {"who": "ada"}),
        ("${nodes.hr.output.ok}", True),
    ],
)
def test_a_string_that_is_one_hole_keeps_the_value_type(text: str, expected: Any) -> None:
    assert render(text) == expected


def test_text_around_holes_renders_to_text() -> None:
    assert render("hello ${input.employee}, ${input.age}") == "hello ada, 36"
    assert render("team: ${input.team}") == 'team: {"name":"it"}'


def test_a_doubled_dollar_is_a_literal() -> None:
    assert render("$${input.employee} is ${input.employee}") == "${input.employee} is ada"
    assert render("$${not an expression}") == "${not an expression}"


def test_a_hole_may_hold_a_cel_string_with_a_closing_brace() -> None:
    assert render("${input.employee + '}'}!") == "ada}!"
    assert render('${"{" + input.employee + "}"}') == "{ada}"


def test_a_string_without_holes_is_not_a_template() -> None:
    assert parse_template("plain $ text {}") is None


def test_a_value_renders_every_template_inside_it() -> None:
    value = compile_value({"who": "${input.employee}", "list": ["${input.age}", 1], "n": None})
    assert value.render(SCOPE) == {"who": "ada", "list": [36, 1], "n": None}
    assert [e.source for e in value.expressions()] == ["input.employee", "input.age"]


@pytest.mark.parametrize("source", ["1 +", "input.", "(a", "a ? b"])
def test_a_condition_that_does_not_compile_raises(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(source)


@pytest.mark.parametrize("text", ["${1 +}", "${}", "${input.employee"])
def test_a_template_that_does_not_compile_raises(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_template(text)


def test_evaluation_failure_raises_expression_error() -> None:
    with pytest.raises(ExpressionError, match=r"input\.missing"):
        compile_expression("input.missing == 1").evaluate(SCOPE)


def test_names_variables_and_nodes_read_are_found() -> None:
    expression = compile_expression(
        "vars.url != '' && vars['token'] != '' && nodes.hr.output.ok && nodes['it'].output.ok"
        " && input.age > 1"
    )
    assert expression.names == {"vars", "nodes", "input"}
    assert expression.members("vars") == {"url", "token"}
    assert expression.nodes == {"hr", "it"}


def test_names_inside_strings_are_not_references() -> None:
    expression = compile_expression("'nodes.ghost and vars.x' == input.employee")
    assert expression.names == {"input"}
    assert expression.nodes == frozenset()
    assert expression.members("vars") == frozenset()


def test_comprehension_variables_are_not_names_in_scope() -> None:
    expression = compile_expression("input.tags.exists(t, t == 'new') && [1, 2].all(x, x > 0)")
    assert expression.names == {"input"}
    assert expression.evaluate(SCOPE) is True
