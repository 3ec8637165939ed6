"""Department definitions: loading and validation, settings defaults on a workflow's work
nodes, `dept.*` names checked against the context, and who may call a department's workflows."""

from __future__ import annotations

import pytest

from braidflow.topology import DefinitionError, Retry, load_workflow
from braidflow.topology.departments import (
    Department,
    call_refusal,
    declares_department,
    load_department,
    may_declare_department,
    refused_calls,
    unknown_context_names,
    with_defaults,
)
from braidflow.topology.loading import parse_text

SUPPORT = """
kind: Department
name: support
description: Customer support
context:
  support_email: help@acme.test
  company_name: Acme
settings:
  node_timeout: 30s
  retry: {max_attempts: 3, backoff: exponential, initial: 2s}
allow_callers: [sales]
"""

TRIAGE = """
id: triage
department: support
nodes:
  - {id: look, type: task, params: {handler: lookup, input: {to: "${dept.support_email}"}}}
  - {id: call, type: http, timeout: 5s, retry: {max_attempts: 1}, params: {method: GET, url: "https://x.test/${dept.region}"}}
  - {id: done, type: end, params: {output: "${dept.company_name}"}}
edges:
  - {from: look, to: call}
  - {from: call, to: done}
"""


def test_a_department_loads_with_its_context_settings_and_callers() -> None:
    support = load_department(SUPPORT)
    assert support == Department(
        "support",
        "Customer support",
        {"support_email": "help@acme.test", "company_name": "Acme"},
        30_000,
        Retry(max_attempts=3, backoff="exponential", initial_ms=2_000),
        ("sales",),
    )


def test_a_department_in_json_loads_too() -> None:
    text = '{"kind": "Department", "name": "sales", "allow_callers": "any"}'
    assert may_declare_department(text)
    assert load_department(text).allow_callers == "any"


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("kind: Department\nname: Support\n", "name", "does not match"),
        ("kind: Department\n", "department", "'name' is a required property"),
        ("kind: Department\nname: s\nallow_callers: 3\n", "allow_callers", "`any` or a list"),
        (
            "kind: Department\nname: s\nsettings: {node_timeout: soon}\n",
            "settings.node_timeout",
            "soon",
        ),
        (
            "kind: Department\nname: s\nsettings: {retry: {max_attempts: 0}}\n",
            "settings.retry.max_attempts",
            "0",
        ),
        ("kind: Department\nname: s\ncontext: []\n", "context", "not of type 'object'"),
        ("kind: Department\nname: s\nowner: me\n", "department", "'owner' was unexpected"),
    ],
)
def test_a_bad_department_is_refused_naming_the_field(text: str, where: str, says: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_department(text)
    assert any(p.where == where and says in p.message for p in caught.value.problems), caught.value


def test_a_workflow_is_not_taken_for_a_department() -> None:
    assert not may_declare_department(TRIAGE)
    assert declares_department(parse_text(SUPPORT))
    assert not declares_department(parse_text(TRIAGE))


def test_department_defaults_fill_only_work_nodes_that_set_none() -> None:
    workflow = with_defaults(load_workflow(TRIAGE), load_department(SUPPORT))
    look, call, done = (workflow.nodes[n].node for n in ("look", "call", "done"))
    assert (look.timeout_ms, look.retry) == (30_000, Retry(3, "exponential", 2_000))
    assert (call.timeout_ms, call.retry) == (5_000, Retry(1))
    assert (done.timeout_ms, done.retry) == (None, None)


def test_a_department_without_settings_leaves_the_workflow_as_it_is() -> None:
    workflow = load_workflow(TRIAGE)
    assert with_defaults(workflow, Department("support")) is workflow
    assert with_defaults(workflow, None) is workflow


def test_dept_names_the_department_does_not_define_are_named_by_node() -> None:
    problems = unknown_context_names(load_workflow(TRIAGE), load_department(SUPPORT))
    assert [str(p) for p in problems] == [
        "node 'call': dept.region: department 'support' has no context variable 'region'"
    ]


def test_a_department_lets_in_its_own_the_listed_and_with_any_everyone() -> None:
    support = load_department(SUPPORT)
    assert call_refusal("a", "support", "b", support) is None
    assert call_refusal("a", "sales", "b", support) is None
    refusal = call_refusal("bill", "billing", "triage", support)
    assert refusal is not None and "'billing'" in refusal and "'support'" in refusal
    assert call_refusal("bill", None, "triage", support) is not None
    assert call_refusal("bill", None, "t", Department("open", allow_callers="any")) is None


CALLER = """
id: order
department: sales
nodes:
  - {id: bill, type: subworkflow, params: {workflow: invoice}}
  - {id: each, type: foreach, params: {items: "${input.lines}", do: invoice}}
  - {id: done, type: end}
edges:
  - {from: bill, to: each}
  - {from: each, to: done}
"""


def test_calls_into_a_department_that_refuses_are_named_by_node() -> None:
    billing = Department("billing", allow_callers=("finance",))
    found = refused_calls(load_workflow(CALLER), lambda w: billing if w == "invoice" else None)
    assert [p.where for p in found] == ["node 'bill'", "node 'each'"]
    assert all("'sales'" in p.message and "'billing'" in p.message for p in found)
    assert refused_calls(load_workflow(CALLER), lambda w: None) == []
