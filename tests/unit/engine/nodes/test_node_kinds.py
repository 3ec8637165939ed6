"""Every node kind is one topology spec, one engine module and its docs; step.py branches on none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from braidflow.engine.nodes import NODE_KINDS
from braidflow.topology import definition_schema
from braidflow.topology.kinds import KINDS, TEMPLATED_PARAMS

ROOT = Path(__file__).resolve().parents[4]


def test_the_engine_runs_exactly_the_kinds_the_topology_knows() -> None:
    assert set(NODE_KINDS) == set(KINDS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_has_its_params_spec_in_the_format_schema(name: str) -> None:
    schema = definition_schema()
    assert name in schema["$defs"]["node"]["properties"]["type"]["enum"]
    assert schema["$defs"][f"params_{name}"] == KINDS[name].params
    spec = KINDS[name]
    assert spec.family in ("work", "control", "wait", "iteration")
    assert set(spec.bound_params) <= set(spec.templated)
    assert TEMPLATED_PARAMS.get(name, ()) == spec.templated
    documented = set(spec.params["properties"])
    assert set(spec.templated) <= documented, "a templated param the schema does not allow"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_has_an_engine_module_and_a_topology_module_of_its_own(name: str) -> None:
    assert type(NODE_KINDS[name]).__module__ == f"braidflow.engine.nodes.{name}"
    assert (ROOT / "braidflow" / "engine" / "nodes" / f"{name}.py").is_file()
    assert (ROOT / "braidflow" / "topology" / "kinds" / f"{name}.py").is_file()
    assert NODE_KINDS[name].spec is KINDS[name]


def test_every_kind_has_a_section_and_a_row_in_the_format_reference() -> None:
    page = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^### `(\w+)`$", page, re.MULTILINE)) == set(KINDS)
    assert set(re.findall(r"^\| \[`(\w+)`\]\(#\w+\) \|", page, re.MULTILINE)) == set(KINDS)


def test_step_holds_no_per_kind_branching() -> None:
    source = (ROOT / "braidflow" / "engine" / "step.py").read_text(encoding="utf-8")
    assert not re.search(r"\.type\s*(==|!=)|\b(node|target|inline)\.type\s+(not\s+)?in\b", source)
    for name in KINDS:
        assert f'"{name}"' not in source, f"step.py names the {name} kind"
