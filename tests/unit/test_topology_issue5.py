"""Delay, approval and subworkflow nodes, on_error edges, `retry.on`, `settings.on_failure`
and join timeouts, as the topology validates, compiles and analyses them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from braidflow.cli import main
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
    parse_text,
    validate_text,
)
from braidflow.topology.durations import parse_timestamp
from braidflow.topology.kinds import NODE_TYPES, WAIT_TYPES
from braidflow.topology.mermaid import mermaid
from braidflow.topology.model import DEFAULT_CHOICES

# Every new node type, an on_error edge on each path, retry.on and the new settings.
ONBOARDING = """
id: onboarding
variables: {team: it}
settings: {timeout: 7d, on_failure: park}
nodes:
  - id: provision
    type: task
    params: {handler: it.provision, input: {who: "${input.who}"}}
    timeout: 30s
    retry: {max_attempts: 3, backoff: exponential, initial: 1s, on: [Timeout, HttpStatus]}
  - id: note_failure
    type: transform
    params: {set: {reason: "${nodes.provision.error.message}"}}
  - id: settled
    type: join
    params: {wait_for: any, timeout: 1h}
  - id: ask
    type: approval
    params:
      message: "Give ${input.who} a laptop? (${vars.team})"
      choices: [approve, reject, later]
      input: {type: object, properties: {note: {type: string}}}
      on_timeout: reject
    timeout: 2d
  - id: cool_off
    type: delay
    params: {for: 24h}
  - id: first_day
    type: delay
    params: {until: "${input.start}"}
  - id: order
    type: subworkflow
    params:
      workflow: laptop-order
      input: {who: "${input.who}", choice: "${nodes.ask.output.choice}"}
      inherit_context: false
    timeout: 1d
  - id: done
    type: end
    params: {output: {ordered: "${nodes.order.output}"}}
  - id: order_failed
    type: end
    params: {output: {error: "${nodes.order.error}", from: "${parent.vars}"}}
edges:
  - {from: provision, to: settled}
  - {from: provision, to: note_failure, on_error: true}
  - {from: note_failure, to: settled}
  - {from: settled, to: ask}
  - {from: ask, to: cool_off}
  - {from: cool_off, to: first_day}
  - {from: first_day, to: order}
  - {from: order, to: done}
  - {from: order, to: order_failed, on_error: true}
"""


def edited(change: Any, text: str = ONBOARDING) -> str:
    """`text` after `change` has edited its document in place."""
    doc = parse_text(text)  # not yaml.safe_load: it reads the key `on` as true
    change(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["id"] == node_id)


def edge(doc: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    return next(e for e in doc["edges"] if e["from"] == source and e["to"] == target)


def between(*nodes: dict[str, Any]) -> str:
    """start -> the given nodes in a row -> done, as YAML."""
    chain = [{"id": "start", "type": "task", "params": {"handler": "h.start"}}, *nodes]
    doc = {
        "id": "wf",
        "variables": {"url": "http://example.test"},
        "nodes": [*chain, {"id": "done", "type": "end"}],
        "edges": [
            {"from": a["id"], "to": b["id"]}
            for a, b in zip(chain, [*chain[1:], {"id": "done"}], strict=True)
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


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
            "unknown type 'forall'; did you mean 'foreach'? (known: approval, decision, delay,"
            " end, foreach, http, join, loop, parallel, publish, subworkflow, task, transform,"
            " wait_event)",
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


# Graph analysis: an on_error edge makes a branch point


def test_a_node_with_an_on_error_edge_is_a_branch_point_whose_paths_converge_at_the_join() -> None:
    graph = load_workflow(ONBOARDING).graph
    assert graph.branch_points == ["provision", "order"]
    assert graph.convergence_points == ["settled"]
    assert graph.leaves == ["done", "order_failed"]
    assert graph.immediate_post_dominators["provision"] == "settled"
    assert graph.immediate_post_dominators["order"] is None


def test_inspect_shows_on_error_branches_and_labels_them(tmp_path: Path) -> None:
    path = tmp_path / "onboarding.yaml"
    path.write_text(ONBOARDING)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "branch points: provision, order" in lines
    assert "convergence points: settled" in lines
    assert "    provision -->|on error| note_failure" in lines


def test_the_flowchart_labels_on_error_edges_and_names_the_new_types() -> None:
    lines = mermaid(load_workflow(ONBOARDING)).splitlines()
    assert "    provision --> settled" in lines
    assert "    provision -->|on error| note_failure" in lines
    assert "    order -->|on error| order_failed" in lines
    assert '    ask["ask (approval)"]' in lines
    assert '    cool_off["cool_off (delay)"]' in lines
    assert '    order["order (subworkflow)"]' in lines


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
    text = edited(lambda d: node(d, "cool_off").update(params={"until": "${secrets.when}"}))
    assert validate_text(text) == [
        Problem(
            "node 'cool_off'",
            "params.until: `secrets.when`: unknown name 'secrets' (in scope: dept, event,"
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


# retry.on and settings.on_failure


def test_retry_on_written_unquoted_in_yaml_is_the_key_on() -> None:
    # YAML 1.1 reads a bare `on` as true; a definition key must stay the word.
    text = """
id: wf
nodes:
  - id: call
    type: http
    params: {method: GET, url: "http://example.test"}
    retry:
      max_attempts: 2
      on: [Timeout]
  - {id: done, type: end}
edges:
  - {from: call, to: done}
"""
    workflow = load_workflow(text)
    retry = workflow.definition.nodes[0].retry
    assert retry is not None and retry.on == ("Timeout",)


def test_yaml_values_keep_their_yaml_meaning_and_only_keys_change() -> None:
    assert parse_text("no: 1\non: [yes, on]\nTrue: false\n") == {
        "no": 1,
        "on": [True, True],
        True: False,
    }
    assert parse_text('{"on": ["Timeout"]}') == {"on": ["Timeout"]}


@pytest.mark.parametrize(
    ("on", "message"),
    [
        ([], "retry.on: [] should be non-empty"),
        (["Timeout", "Timeout"], "retry.on: ['Timeout', 'Timeout'] has non-unique elements"),
        ("Timeout", "retry.on: 'Timeout' is not of type 'array'"),
        ([""], "retry.on.0: '' should be non-empty"),
    ],
)
def test_retry_on_problems(on: Any, message: str) -> None:
    text = edited(lambda d: node(d, "provision")["retry"].update(on=on))
    assert validate_text(text) == [Problem("node 'provision'", message)]


def test_on_failure_is_fail_or_park() -> None:
    text = edited(lambda d: d["settings"].update(on_failure="stop"))
    assert validate_text(text) == [
        Problem("definition", "settings.on_failure: 'stop' is not one of ['fail', 'park']")
    ]


# on_error edges


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("task", {"handler": "h.work"}),
        ("http", {"method": "GET", "url": "http://example.test"}),
        ("transform", {"set": {"a": 1}}),
        ("wait_event", {"type": "x.happened"}),
        ("delay", {"for": "1s"}),
        ("approval", {}),
        ("subworkflow", {"workflow": "child"}),
    ],
)
def test_every_node_that_can_fail_may_have_an_on_error_edge(
    kind: str, params: dict[str, Any]
) -> None:
    def change(doc: dict[str, Any]) -> None:
        source = node(doc, "provision")
        source.clear()
        source.update(id="provision", type=kind, params=params)

    assert validate_text(edited(change)) == []


@pytest.mark.parametrize(
    ("source", "extra"),
    [
        ("decision", []),
        ("parallel", []),
        (
            "publish",
            [
                Problem(
                    "node 'src'",
                    "a publish node has 2 outgoing edges; only decision and parallel nodes branch",
                )
            ],
        ),
    ],
)
def test_an_on_error_edge_leaves_only_nodes_that_can_fail(
    source: str, extra: list[Problem]
) -> None:
    params = {"publish": {"type": "x.done"}}.get(source, {})
    text = f"""
id: wf
nodes:
  - {{id: src, type: {source}, params: {params}}}
  - {{id: done, type: end}}
  - {{id: failed, type: end}}
edges:
  - {{from: src, to: done{", default: true" if source == "decision" else ""}}}
  - {{from: src, to: failed, on_error: true}}
"""
    assert validate_text(text) == [
        Problem(
            "edge 'src -> failed'",
            "`on_error` edges leave only approval, delay, foreach, http, loop, subworkflow, task,"
            " transform or wait_event nodes",
        ),
        *extra,
    ]


def test_an_on_error_edge_out_of_an_end_is_refused() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "after", "type": "end"})
        doc["edges"].append({"from": "done", "to": "after", "on_error": True})

    assert validate_text(edited(change)) == [
        Problem(
            "edge 'done -> after'",
            "`on_error` edges leave only approval, delay, foreach, http, loop, subworkflow, task,"
            " transform or wait_event nodes",
        ),
        Problem("node 'done'", "is an end but has outgoing edges"),
    ]


def test_a_node_may_have_only_one_on_error_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "also_failed", "type": "end"})
        doc["edges"].append({"from": "order", "to": "also_failed", "on_error": True})

    assert validate_text(edited(change)) == [
        Problem("node 'order'", "a subworkflow node may have only one on_error edge")
    ]


def test_a_node_needs_a_normal_edge_besides_its_on_error_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].remove(node(doc, "done"))
        doc["edges"].remove(edge(doc, "order", "done"))

    assert validate_text(edited(change)) == [
        Problem(
            "node 'order'", "a subworkflow node needs one outgoing edge besides its on_error edge"
        )
    ]


def test_a_node_does_not_branch_besides_its_on_error_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "also", "type": "end"})
        doc["edges"].append({"from": "order", "to": "also"})

    assert validate_text(edited(change)) == [
        Problem(
            "node 'order'",
            "a subworkflow node has 2 outgoing edges besides its on_error edge; only decision"
            " and parallel nodes branch",
        )
    ]


def test_an_on_error_edge_takes_no_condition_default_or_timeout() -> None:
    text = edited(
        lambda d: edge(d, "order", "order_failed").update(when="true", default=True, timeout=True)
    )
    assert validate_text(text) == [
        Problem("edge 'order -> order_failed'", "an on_error edge takes no `when`"),
        Problem("edge 'order -> order_failed'", "an on_error edge takes no `default`"),
        Problem("edge 'order -> order_failed'", "an on_error edge takes no `timeout`"),
    ]


def test_false_flags_on_an_on_error_edge_say_nothing() -> None:
    text = edited(lambda d: edge(d, "order", "order_failed").update(default=False, timeout=False))
    assert validate_text(text) == []


def test_a_non_boolean_on_error_flag_is_a_schema_problem() -> None:
    text = edited(lambda d: edge(d, "order", "order_failed").update(on_error="yes"))
    assert Problem(
        "edge 'order -> order_failed'", "on_error: 'yes' is not of type 'boolean'"
    ) in validate_text(text)


WAIT_WITH_BOTH = """
id: wf
nodes:
  - id: wait
    type: wait_event
    params: {type: parcel.delivered}
    timeout: 3d
  - {id: delivered, type: end}
  - {id: lost, type: end}
  - {id: broken, type: end}
edges:
  - {from: wait, to: delivered}
  - {from: wait, to: lost, timeout: true}
  - {from: wait, to: broken, on_error: true}
"""


def test_a_wait_event_may_have_a_timeout_edge_and_an_on_error_edge() -> None:
    workflow = load_workflow(WAIT_WITH_BOTH)
    assert [(e.target, e.timeout, e.on_error) for e in workflow.nodes["wait"].outgoing] == [
        ("delivered", False, False),
        ("lost", True, False),
        ("broken", False, True),
    ]
    assert "    wait -->|on error| broken" in mermaid(workflow).splitlines()


def test_a_wait_event_needs_a_normal_edge_besides_its_timeout_and_on_error_edges() -> None:
    def change(doc: dict[str, Any]) -> None:
        del doc["nodes"][1]
        del doc["edges"][0]

    assert validate_text(edited(change, WAIT_WITH_BOTH)) == [
        Problem(
            "node 'wait'",
            "a wait_event node needs one outgoing edge besides its timeout and on_error edges",
        )
    ]


def test_timeout_edges_still_leave_only_a_wait_event() -> None:
    text = edited(lambda d: edge(d, "order", "order_failed").update(on_error=False, timeout=True))
    assert validate_text(text) == [
        Problem("edge 'order -> order_failed'", "`timeout` edges leave only wait_event nodes"),
        Problem(
            "node 'order'",
            "a subworkflow node has 2 outgoing edges; only decision and parallel nodes branch",
        ),
    ]


# One pass


def test_every_problem_with_the_new_features_is_found_in_one_pass() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["settings"]["on_failure"] = "retry"
        node(doc, "cool_off")["params"] = {"for": "1h", "until": "2027-01-04T09:00:00Z"}
        node(doc, "ask")["params"].update(choices=["yes", "no"])
        node(doc, "order")["params"].pop("workflow")
        edge(doc, "provision", "note_failure")["when"] = "true"
        node(doc, "settled")["timeout"] = "1m"

    assert validate_text(edited(change)) == [
        Problem("node 'order'", "params: 'workflow' is a required property"),
        Problem("definition", "settings.on_failure: 'retry' is not one of ['fail', 'park']"),
        Problem("node 'settled'", "has `timeout` and `params.timeout`; give only one"),
        Problem("node 'ask'", "params.on_timeout: 'reject' is not among the choices (yes, no)"),
        Problem("node 'cool_off'", "params: a delay takes `for` or `until`, not both"),
        Problem("edge 'provision -> note_failure'", "an on_error edge takes no `when`"),
    ]


def test_param_problems_are_found_even_when_the_graph_cannot_be_checked() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["edges"] = "none"
        node(doc, "cool_off")["params"] = {}

    assert validate_text(edited(change)) == [
        Problem("definition", "edges: 'none' is not of type 'array'"),
        Problem(
            "node 'cool_off'", "params: a delay needs `for` (a duration) or `until` (a timestamp)"
        ),
    ]


def test_a_node_type_that_is_not_text_is_one_schema_problem() -> None:
    text = edited(lambda d: node(d, "cool_off").update(type=["delay"]))
    assert validate_text(text) == [
        Problem(
            "node 'cool_off'",
            "unknown type ['delay'] (known:"
            " approval, decision, delay, end, foreach, http, join, loop, parallel, publish, subworkflow,"
            " task, transform, wait_event)",
        )
    ]


# Timestamps


def test_timestamps_are_read_to_epoch_milliseconds() -> None:
    assert parse_timestamp("1970-01-01T00:00:01.5Z") == 1_500
    assert parse_timestamp("2027-01-04T09:00:00+01:00") == parse_timestamp("2027-01-04T08:00:00Z")
    with pytest.raises(ValueError, match="with an offset or Z"):
        parse_timestamp("2027-01-04")
