"""The model of delay, approval, subworkflow and join nodes: their kinds, the settings, `retry.on`,
on_error flags, and what their params compile to."""

from __future__ import annotations

from typing import Any

from onboarding_definition import ONBOARDING, between, edited, node

from braidflow.topology import (
    CompiledEdge,
    CompiledNode,
    Definition,
    Edge,
    Node,
    Problem,
    Retry,
    definition_schema,
    load_workflow,
    validate_text,
)
from braidflow.topology.kinds import NODE_TYPES, WAIT_TYPES
from braidflow.topology.model import DEFAULT_CHOICES

# The node kinds and the shared dataclasses


def test_delay_approval_and_subworkflow_are_waits_and_foreach_is_a_node_type() -> None:
    assert sorted(WAIT_TYPES) == ["approval", "delay", "subworkflow", "wait_event"]
    assert WAIT_TYPES <= NODE_TYPES
    assert "foreach" in NODE_TYPES
    assert {"approval", "delay", "subworkflow", "foreach"} <= set(
        definition_schema()["$defs"]["node"]["properties"]["type"]["enum"]
    )


def test_an_unknown_type_lists_foreach_among_the_known_ones() -> None:
    text = between({"id": "each", "type": "forall"})
    assert validate_text(text) == [
        Problem(
            "node 'each'",
            "unknown type 'forall'; did you mean 'foreach'? (known: approval, code, decision,"
            " delay, end, foreach, http, join, loop, parallel, publish, subworkflow, task,"
            " transform, wait_event)",
        ),
    ]


def test_new_dataclass_fields_come_last_with_defaults() -> None:
    assert Retry(3, "exponential", 500, 10_000, True).on is None
    assert Edge("a", "b", None, False, False).on_error is False
    assert Definition("wf", (), (), None, None, None, None, {}, None, ()).on_failure == "fail"
    assert CompiledEdge(0, "a", "b", None, False, False).on_error is False
    compiled = CompiledNode(Node("a", "task"), {}, (), (), None)
    assert (compiled.reply_validator, compiled.delay_ms, compiled.join_timeout_ms) == (
        None,
        None,
        None,
    )


# A workflow with every new node type


def test_a_workflow_using_every_new_node_type_is_valid() -> None:
    assert validate_text(ONBOARDING) == []


def test_the_new_settings_and_retry_on_are_in_the_model() -> None:
    definition = load_workflow(ONBOARDING).definition
    assert definition.on_failure == "park"
    assert definition.timeout_ms == 7 * 86_400_000
    (provision,) = [n for n in definition.nodes if n.id == "provision"]
    assert provision.retry == Retry(3, "exponential", 1_000, None, False, ("Timeout", "HttpStatus"))


def test_on_failure_defaults_to_fail_and_retry_on_to_every_error() -> None:
    def change(doc: dict[str, Any]) -> None:
        del doc["settings"]["on_failure"]
        del node(doc, "provision")["retry"]["on"]

    definition = load_workflow(edited(change)).definition
    assert definition.on_failure == "fail"
    assert definition.nodes[0].retry is not None and definition.nodes[0].retry.on is None


def test_edges_carry_the_on_error_flag() -> None:
    workflow = load_workflow(ONBOARDING)
    assert [(e.target, e.on_error) for e in workflow.nodes["provision"].outgoing] == [
        ("settled", False),
        ("note_failure", True),
    ]
    assert [e.on_error for e in workflow.definition.edges] == [
        False,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
    ]


def test_an_approval_compiles_its_message_and_its_reply_validator() -> None:
    ask = load_workflow(ONBOARDING).nodes["ask"]
    scope = {"input": {"who": "ada"}, "vars": {"team": "it"}}
    assert ask.params["message"].render(scope) == "Give ada a laptop? (it)"
    assert ask.node.timeout_ms == 2 * 86_400_000
    assert ask.reply_validator is not None
    assert ask.reply_validator.is_valid({"note": "asap"})
    assert not ask.reply_validator.is_valid({"note": 7})
    assert (ask.delay_ms, ask.join_timeout_ms) == (None, None)


def test_an_approval_without_an_input_schema_has_no_reply_validator() -> None:
    text = edited(lambda d: node(d, "ask")["params"].pop("input"))
    assert load_workflow(text).nodes["ask"].reply_validator is None


def test_an_approval_offers_approve_and_reject_by_default() -> None:
    assert DEFAULT_CHOICES == ("approve", "reject")
    text = edited(lambda d: node(d, "ask")["params"].pop("choices"))
    assert validate_text(text) == []


def test_an_approval_needs_no_params_at_all() -> None:
    text = between({"id": "ask", "type": "approval"})
    assert validate_text(text) == []


def test_a_delay_for_a_duration_is_parsed() -> None:
    cool_off = load_workflow(ONBOARDING).nodes["cool_off"]
    assert cool_off.delay_ms == 86_400_000
    assert cool_off.params == {}


def test_a_delay_until_a_time_is_a_template() -> None:
    first_day = load_workflow(ONBOARDING).nodes["first_day"]
    assert first_day.delay_ms is None
    scope = {"input": {"start": "2027-01-04T09:00:00+01:00"}}
    assert first_day.params["until"].render(scope) == "2027-01-04T09:00:00+01:00"


def test_a_delay_until_a_literal_timestamp_is_valid() -> None:
    text = between({"id": "wait", "type": "delay", "params": {"until": "2027-01-04T09:00:00Z"}})
    assert validate_text(text) == []


def test_a_subworkflow_compiles_its_input() -> None:
    order = load_workflow(ONBOARDING).nodes["order"]
    scope = {"input": {"who": "ada"}, "nodes": {"ask": {"output": {"choice": "approve"}}}}
    assert order.params["input"].render(scope) == {"who": "ada", "choice": "approve"}
    assert order.node.timeout_ms == 86_400_000
    assert order.node.params["workflow"] == "laptop-order"


def test_a_subworkflow_without_input_has_no_input_template() -> None:
    text = between({"id": "child", "type": "subworkflow", "params": {"workflow": "child"}})
    assert "input" not in load_workflow(text).nodes["child"].params


def test_a_join_timeout_is_parsed_from_params() -> None:
    workflow = load_workflow(ONBOARDING)
    assert workflow.nodes["settled"].join_timeout_ms == 3_600_000
    assert workflow.nodes["provision"].join_timeout_ms is None


def test_a_join_timeout_may_sit_on_the_node() -> None:
    def change(doc: dict[str, Any]) -> None:
        del node(doc, "settled")["params"]["timeout"]
        node(doc, "settled")["timeout"] = "5m"

    assert load_workflow(edited(change)).nodes["settled"].join_timeout_ms == 300_000


def test_a_join_without_a_timeout_has_none() -> None:
    text = edited(lambda d: node(d, "settled")["params"].pop("timeout"))
    assert load_workflow(text).nodes["settled"].join_timeout_ms is None
