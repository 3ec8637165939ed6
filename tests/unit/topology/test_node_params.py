"""The params of delay, approval and subworkflow nodes, and join timeouts: each problem named."""

from __future__ import annotations

from typing import Any

import pytest
from onboarding_definition import between, edited, node

from braidflow.topology import Problem, validate_text

# Delay params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "params: a delay needs `for` (a duration) or `until` (a timestamp)"),
        (
            {"for": "1h", "until": "${input.start}"},
            "params: a delay takes `for` or `until`, not both",
        ),
        ({"for": "1 day"}, "params.for: '1 day' does not match ^[0-9]+(ms|s|m|h|d)$"),
        (
            {"until": "next monday"},
            "params.until: 'next monday' is not an ISO-8601 timestamp with an offset or Z",
        ),
        (
            {"until": "2027-01-04T09:00:00"},
            "params.until: '2027-01-04T09:00:00' is not an ISO-8601 timestamp with an offset or Z",
        ),
        ({"until": ""}, "params.until: '' should be non-empty"),
        ({"until": 1_800_000_000}, "params.until: 1800000000 is not of type 'string'"),
        (
            {"until": "${nodes.done.output.at}"},
            "params.until: `nodes.done.output.at`: node 'done' does not run before 'wait'",
        ),
        (
            {"for": "1h", "seconds": 3},
            "params: Additional properties are not allowed ('seconds' was unexpected)",
        ),
    ],
)
def test_delay_problems(params: dict[str, Any], message: str) -> None:
    text = between({"id": "wait", "type": "delay", "params": params})
    assert validate_text(text) == [Problem("node 'wait'", message)]


def test_a_delay_takes_no_timeout() -> None:
    text = edited(lambda d: node(d, "cool_off").update(timeout="1h"))
    assert validate_text(text) == [
        Problem(
            "node 'cool_off'", "a delay takes no `timeout`; `for` or `until` says how long it waits"
        )
    ]


def test_a_delay_needs_params() -> None:
    text = between({"id": "wait", "type": "delay"})
    assert validate_text(text) == [Problem("node 'wait'", "'params' is a required property")]


# Approval params


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"choices": ["yes", "no"], "on_timeout": "approve"},
            "params.on_timeout: 'approve' is not among the choices (yes, no)",
        ),
        (
            {"on_timeout": "maybe"},
            "params.on_timeout: 'maybe' is not one of ['approve', 'reject', 'fail']",
        ),
        (
            {"choices": ["yes", "yes"], "on_timeout": "fail"},
            "params.choices: ['yes', 'yes'] has non-unique elements",
        ),
        ({"choices": []}, "params.choices: [] should be non-empty"),
        ({"choices": ["reject", ""]}, "params.choices.1: '' should be non-empty"),
        ({"message": 42}, "params.message: 42 is not of type 'string'"),
        (
            {"input": {"type": "objekt"}},
            "params.input: invalid JSON Schema at type: 'objekt' is not valid under any of the"
            " given schemas",
        ),
        (
            {"message": "${nodes.done.output}"},
            "params.message: `nodes.done.output`: node 'done' does not run before 'ask'",
        ),
        (
            {"timeout": "1h"},
            "params: Additional properties are not allowed ('timeout' was unexpected)",
        ),
    ],
)
def test_approval_problems(change: dict[str, Any], message: str) -> None:
    text = edited(lambda d: node(d, "ask")["params"].update(change))
    assert validate_text(text) == [Problem("node 'ask'", message)]


def test_an_approval_that_times_out_to_a_choice_needs_that_choice_even_by_default() -> None:
    def change(doc: dict[str, Any]) -> None:
        node(doc, "ask")["params"].pop("choices")
        node(doc, "ask")["params"]["on_timeout"] = "approve"

    assert validate_text(edited(change)) == []


def test_an_approval_timing_out_to_fail_needs_no_such_choice() -> None:
    def change(doc: dict[str, Any]) -> None:
        node(doc, "ask")["params"].update(choices=["yes", "no"], on_timeout="fail")

    assert validate_text(edited(change)) == []


def test_an_approval_with_on_timeout_needs_a_timeout() -> None:
    text = edited(lambda d: node(d, "ask").pop("timeout"))
    assert validate_text(text) == [
        Problem("node 'ask'", "has `params.on_timeout` but no `timeout`")
    ]


def test_an_approval_without_timeout_or_on_timeout_waits_for_ever() -> None:
    def change(doc: dict[str, Any]) -> None:
        node(doc, "ask").pop("timeout")
        node(doc, "ask")["params"].pop("on_timeout")

    assert validate_text(edited(change)) == []


# Subworkflow params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"input": {}}, "params: 'workflow' is a required property"),
        (
            {"workflow": "Laptop Order"},
            "params.workflow: 'Laptop Order' does not match ^[a-z][a-z0-9._-]*$",
        ),
        (
            {"workflow": "${input.kind}"},
            "params.workflow: '${input.kind}' does not match ^[a-z][a-z0-9._-]*$",
        ),
        ({"workflow": "child", "wait": "yes"}, "params.wait: 'yes' is not of type 'boolean'"),
        (
            {"workflow": "child", "inherit_context": 1},
            "params.inherit_context: 1 is not of type 'boolean'",
        ),
        (
            {"workflow": "child", "input": {"url": "${vars.nope}"}},
            "params.input: `vars.nope`: unknown variable 'nope'",
        ),
    ],
)
def test_subworkflow_problems(params: dict[str, Any], message: str) -> None:
    text = between({"id": "child", "type": "subworkflow", "params": params})
    assert validate_text(text) == [Problem("node 'child'", message)]


def test_a_subworkflow_that_does_not_wait_takes_no_timeout() -> None:
    text = edited(lambda d: node(d, "order")["params"].update(wait=False))
    assert validate_text(text) == [
        Problem(
            "node 'order'",
            "has `timeout` but `wait: false`; a subworkflow that does not wait never times out",
        )
    ]


def test_a_subworkflow_that_does_not_wait_is_valid_without_a_timeout() -> None:
    def change(doc: dict[str, Any]) -> None:
        node(doc, "order")["params"]["wait"] = False
        del node(doc, "order")["timeout"]

    assert validate_text(edited(change)) == []


# Join timeout


def test_a_join_timeout_on_the_node_and_in_params_is_a_problem() -> None:
    text = edited(lambda d: node(d, "settled").update(timeout="5m"))
    assert validate_text(text) == [
        Problem("node 'settled'", "has `timeout` and `params.timeout`; give only one")
    ]


def test_a_join_timeout_must_be_a_duration() -> None:
    text = edited(lambda d: node(d, "settled")["params"].update(timeout="soon"))
    assert validate_text(text) == [
        Problem("node 'settled'", "params.timeout: 'soon' does not match ^[0-9]+(ms|s|m|h|d)$")
    ]
