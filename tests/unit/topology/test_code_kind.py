"""A `code` node's params: its source must define `main`, its limits stay within bounds."""

from __future__ import annotations

import pytest

from braidflow.topology import DefinitionError, definition_schema, load_workflow, validate_text
from braidflow.topology.kinds.code import (
    DEFAULT_LIMITS,
    limits_in_force,
    limits_problem,
    source_problem,
)

DEFINITION = """
id: sums
nodes:
  - id: calc
    type: code
    params:
      source: |
        def main(input):
            return {"sum": sum(input["xs"])}
      input: {xs: "${input.xs}"}
      limits: {cpu_ms: 500}
  - {id: done, type: end, params: {output: "${nodes.calc.output}"}}
edges:
  - {from: calc, to: done}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as refused:
        load_workflow(text)
    return [str(p) for p in refused.value.problems]


def test_a_code_node_with_a_main_is_valid() -> None:
    assert validate_text(DEFINITION) == []


def test_a_source_without_main_is_refused_naming_the_node() -> None:
    text = DEFINITION.replace("def main(input)", "def mian(input)")
    assert problems(text) == ["node 'calc': params.source defines no top-level `def main(input)`"]


def test_a_syntax_error_is_refused_with_its_line() -> None:
    text = DEFINITION.replace('return {"sum"', 'return {{"sum"')
    assert problems(text) == [
        "node 'calc': params.source is not valid Python at line 2: '{' was never closed"
    ]


def test_an_async_main_is_refused() -> None:
    assert source_problem("async def main(input):\n    return 1\n") == (
        "defines `async def main`; it must be a plain `def main(input)`"
    )


def test_a_limit_past_its_maximum_is_refused_naming_it() -> None:
    text = DEFINITION.replace("cpu_ms: 500", "cpu_ms: 500, memory_mb: 100000")
    assert problems(text) == [
        "node 'calc': params.limits.memory_mb: 100000 is greater than the maximum of 2048"
    ]


def test_an_unknown_limit_is_refused() -> None:
    assert any("disk_mb" in p for p in problems(DEFINITION.replace("cpu_ms", "disk_mb")))


def test_the_limits_in_force_fill_in_the_defaults() -> None:
    assert limits_in_force({"cpu_ms": 500}) == {**DEFAULT_LIMITS, "cpu_ms": 500}
    assert limits_in_force(None) == {
        "cpu_ms": 1000,
        "memory_mb": 256,
        "wall_ms": 10000,
        "network": False,
    }


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({**DEFAULT_LIMITS, "cpu_ms": 10**9}, "limits.cpu_ms must be an integer from 10 to 60000"),
        ({**DEFAULT_LIMITS, "memory_mb": 1.5}, "limits.memory_mb must be an integer"),
        ({**DEFAULT_LIMITS, "wall_ms": True}, "limits.wall_ms must be an integer"),
        ({**DEFAULT_LIMITS, "network": "yes"}, "limits.network must be true or false"),
        ({"cpu_ms": 10}, "limits must set exactly cpu_ms, memory_mb, network, wall_ms"),
        (None, "limits must set exactly"),
    ],
)
def test_a_request_s_limits_are_checked_again(limits: object, named: str) -> None:
    problem = limits_problem(limits)
    assert problem is not None and problem.startswith(named)


def test_the_defaults_pass_their_own_check() -> None:
    assert limits_problem(limits_in_force(None)) is None


def test_the_format_s_schema_has_the_code_params() -> None:
    params = definition_schema()["$defs"]["params_code"]
    assert params["required"] == ["source"]
    assert params["properties"]["limits"]["properties"]["wall_ms"]["maximum"] == 300_000


def test_a_code_node_may_not_name_a_secret() -> None:
    text = DEFINITION.replace('xs: "${input.xs}"', 'xs: "${secrets.API_KEY}"')
    [problem] = problems(text)
    assert problem.startswith("node 'calc': params.input: `${secrets.API_KEY}` may be named only")
