"""`wait_event` and `publish` nodes, and the timeout edges that leave a wait."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from braidflow.topology import Problem, load_workflow, validate_text
from braidflow.topology.kinds import CONTROL_TYPES, NODE_TYPES, WAIT_TYPES, WORK_TYPES
from braidflow.topology.mermaid import mermaid

WAIT_FOR_APPROVAL = """
id: approval
variables: {topic: approvals}
nodes:
  - id: ask
    type: publish
    params:
      type: "approval.${input.kind}.requested"
      subject: "${execution.id}"
      data: {who: "${input.who}", topic: "${vars.topic}", n: 1}
  - id: wait
    type: wait_event
    params:
      type: approval.given
      correlate: "event.subject == execution.id && event.data.who == input.who"
    timeout: 2h
  - {id: approved, type: end, params: {output: {answer: "${nodes.wait.output.data}"}}}
  - {id: too_late, type: end, params: {output: {answer: null}}}
edges:
  - {from: ask, to: wait}
  - {from: wait, to: approved}
  - {from: wait, to: too_late, timeout: true}
"""


def edited(change: Any) -> str:
    """WAIT_FOR_APPROVAL after `change` has edited its document in place."""
    doc = yaml.safe_load(WAIT_FOR_APPROVAL)
    change(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["id"] == node_id)


def test_the_node_kinds_are_sorted_into_work_control_and_wait() -> None:
    assert sorted(WAIT_TYPES) == ["approval", "delay", "subworkflow", "wait_event"]
    assert "publish" in CONTROL_TYPES
    assert {"http", "task", "fetch_page", "llm", "code", "email"} <= WORK_TYPES
    assert {"classify", "extract", "summarize"} <= WORK_TYPES
    assert not WORK_TYPES & (WAIT_TYPES | CONTROL_TYPES)
    assert {"wait_event", "publish"} <= NODE_TYPES


def test_a_publish_then_wait_with_a_timeout_edge_is_valid() -> None:
    assert validate_text(WAIT_FOR_APPROVAL) == []


def test_publish_params_are_compiled_templates() -> None:
    ask = load_workflow(WAIT_FOR_APPROVAL).nodes["ask"]
    scope = {"input": {"kind": "leave", "who": "ada"}, "execution": {"id": "x1"}}
    scope["vars"] = {"topic": "approvals"}
    assert ask.params["type"].render(scope) == "approval.leave.requested"
    assert ask.params["subject"].render(scope) == "x1"
    assert ask.params["data"].render(scope) == {"who": "ada", "topic": "approvals", "n": 1}


def test_a_publish_needs_a_type() -> None:
    text = edited(lambda d: node(d, "ask").update(params={"data": {}}))
    assert validate_text(text) == [Problem("node 'ask'", "params: 'type' is a required property")]


def test_publish_templates_are_checked_like_other_params() -> None:
    text = edited(lambda d: node(d, "ask")["params"].update(subject="${nodes.wait.output}"))
    assert validate_text(text) == [
        Problem(
            "node 'ask'",
            "params.subject: `nodes.wait.output`: node 'wait' does not run before 'ask'",
        )
    ]


def test_the_wait_node_compiles_its_correlation_and_keeps_its_timeout() -> None:
    wait = load_workflow(WAIT_FOR_APPROVAL).nodes["wait"]
    assert wait.node.timeout_ms == 2 * 3_600_000
    assert wait.correlate is not None
    scope = {
        "event": {"subject": "x1", "data": {"who": "ada"}},
        "execution": {"id": "x1"},
        "input": {"who": "ada"},
    }
    assert wait.correlate.evaluate(scope) is True
    assert wait.correlate.evaluate({**scope, "execution": {"id": "x2"}}) is False


def test_a_timeout_in_params_becomes_the_node_timeout() -> None:
    def change(doc: dict[str, Any]) -> None:
        del node(doc, "wait")["timeout"]
        node(doc, "wait")["params"]["timeout"] = "90s"

    assert load_workflow(edited(change)).nodes["wait"].node.timeout_ms == 90_000


def test_a_wait_without_correlation_has_none() -> None:
    text = edited(lambda d: node(d, "wait")["params"].pop("correlate"))
    assert load_workflow(text).nodes["wait"].correlate is None


def test_edges_carry_the_timeout_flag() -> None:
    workflow = load_workflow(WAIT_FOR_APPROVAL)
    assert [(e.target, e.timeout) for e in workflow.nodes["wait"].outgoing] == [
        ("approved", False),
        ("too_late", True),
    ]
    assert [e.timeout for e in workflow.definition.edges] == [False, False, True]


def test_a_wait_with_a_timeout_edge_is_a_branch_point_whose_paths_converge_like_a_decision() -> (
    None
):
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"][2:] = [
            {"id": "got_it", "type": "transform", "params": {"set": {"ok": True}}},
            {"id": "gave_up", "type": "transform", "params": {"set": {"ok": False}}},
            {"id": "either", "type": "join", "params": {"wait_for": "any"}},
            {"id": "done", "type": "end"},
        ]
        doc["edges"][1:] = [
            {"from": "wait", "to": "got_it"},
            {"from": "wait", "to": "gave_up", "timeout": True},
            {"from": "got_it", "to": "either"},
            {"from": "gave_up", "to": "either"},
            {"from": "either", "to": "done"},
        ]

    graph = load_workflow(edited(change)).graph
    assert graph.branch_points == ["wait"]
    assert graph.convergence_points == ["either"]
    assert graph.immediate_post_dominators["wait"] == "either"


def test_a_timeout_edge_is_labelled_in_the_flowchart() -> None:
    lines = mermaid(load_workflow(WAIT_FOR_APPROVAL)).splitlines()
    assert "    wait --> approved" in lines
    assert "    wait -->|timeout| too_late" in lines
    assert '    wait["wait (wait_event)"]' in lines


@pytest.mark.parametrize(
    ("event_type", "message"),
    [
        (
            "approval.*",
            "params.type: 'approval.*' is a pattern or template; a wait_event waits for one"
            " exact CloudEvent type",
        ),
        (
            "approval.${input.kind}",
            "params.type: 'approval.${input.kind}' is a pattern or template; a wait_event"
            " waits for one exact CloudEvent type",
        ),
        ("approval. given", "params.type: 'approval. given' contains whitespace"),
        ("", "params.type: '' should be non-empty"),
    ],
)
def test_a_wait_waits_for_one_exact_type(event_type: str, message: str) -> None:
    text = edited(lambda d: node(d, "wait")["params"].update(type=event_type))
    assert validate_text(text) == [Problem("node 'wait'", message)]


def test_a_wait_needs_a_type() -> None:
    text = edited(lambda d: node(d, "wait")["params"].pop("type"))
    assert validate_text(text) == [Problem("node 'wait'", "params: 'type' is a required property")]


def test_a_wait_params_timeout_must_be_a_duration() -> None:
    text = edited(lambda d: node(d, "wait")["params"].update(timeout="2 hours"))
    problems = validate_text(text)
    assert Problem(
        "node 'wait'", "params.timeout: '2 hours' does not match ^[0-9]+(ms|s|m|h|d)$"
    ) in (problems)


def test_a_timeout_on_the_node_and_in_params_is_a_problem() -> None:
    text = edited(lambda d: node(d, "wait")["params"].update(timeout="1h"))
    assert validate_text(text) == [
        Problem("node 'wait'", "has `timeout` and `params.timeout`; give only one")
    ]


@pytest.mark.parametrize(
    ("correlate", "message"),
    [
        (
            "event.subject == nodes.approved.output",
            "params.correlate: `event.subject == nodes.approved.output`: node 'approved' does"
            " not run before 'wait'",
        ),
        (
            "nodes.wait.output == event.data",
            "params.correlate: `nodes.wait.output == event.data`: node 'wait' does not run"
            " before 'wait'",
        ),
        (
            "event.data.k == vars.nope",
            "params.correlate: `event.data.k == vars.nope`: unknown variable 'nope'",
        ),
        (
            "settings.k == event.data.k",
            "params.correlate: `settings.k == event.data.k`: unknown name 'settings' (in scope:"
            " dept, event, execution, input, nodes, parent, vars)",
        ),
        (
            "nodes.ghost.output",
            "params.correlate: `nodes.ghost.output`: unknown node 'ghost'",
        ),
    ],
)
def test_correlation_problems(correlate: str, message: str) -> None:
    text = edited(lambda d: node(d, "wait")["params"].update(correlate=correlate))
    assert validate_text(text) == [Problem("node 'wait'", message)]


def test_a_correlation_may_read_nodes_that_ran_before_the_wait() -> None:
    correlate = "event.subject == nodes.ask.output.id"
    text = edited(lambda d: node(d, "wait")["params"].update(correlate=correlate))
    assert validate_text(text) == []


def test_a_correlation_that_does_not_compile() -> None:
    text = edited(lambda d: node(d, "wait")["params"].update(correlate="event.subject =="))
    (problem,) = validate_text(text)
    assert problem.where == "node 'wait'"
    assert problem.message.startswith("params.correlate: ")


# Timeout edges


def test_a_timeout_edge_leaves_only_a_wait() -> None:
    text = """
id: wf
nodes:
  - {id: work, type: task, params: {handler: h.work}, timeout: 1s}
  - {id: done, type: end}
  - {id: late, type: end}
edges:
  - {from: work, to: done}
  - {from: work, to: late, timeout: true}
"""
    assert validate_text(text) == [
        Problem("edge 'work -> late'", "`timeout` edges leave only wait_event nodes"),
        Problem(
            "node 'work'",
            "a task node has 2 outgoing edges; only decision and parallel nodes branch",
        ),
    ]


def test_a_timeout_edge_out_of_a_decision_is_refused_without_decision_noise() -> None:
    text = """
id: wf
nodes:
  - {id: check, type: decision}
  - {id: done, type: end}
  - {id: late, type: end}
edges:
  - {from: check, to: done, default: true}
  - {from: check, to: late, timeout: true}
"""
    assert validate_text(text) == [
        Problem("edge 'check -> late'", "`timeout` edges leave only wait_event nodes")
    ]


def test_a_timeout_edge_needs_a_timeout_on_the_wait() -> None:
    text = edited(lambda d: node(d, "wait").pop("timeout"))
    assert validate_text(text) == [Problem("node 'wait'", "has a timeout edge but no `timeout`")]


def test_a_wait_with_a_timeout_but_no_timeout_edge_is_valid() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].pop()
        doc["edges"].pop()

    assert validate_text(edited(change)) == []


def test_a_timeout_edge_takes_no_condition_and_is_no_default() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["edges"][2].update(when="true", default=True)

    assert validate_text(edited(change)) == [
        Problem("edge 'wait -> too_late'", "a timeout edge takes no `when`"),
        Problem("edge 'wait -> too_late'", "a timeout edge takes no `default`"),
    ]


def test_a_wait_may_have_only_one_timeout_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "later", "type": "end"})
        doc["edges"].append({"from": "wait", "to": "later", "timeout": True})

    assert validate_text(edited(change)) == [
        Problem("node 'wait'", "a wait_event node may have only one timeout edge")
    ]


def test_a_wait_needs_a_normal_edge_besides_its_timeout_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        del doc["nodes"][2]
        del doc["edges"][1]

    assert validate_text(edited(change)) == [
        Problem("node 'wait'", "a wait_event node needs one outgoing edge besides its timeout edge")
    ]


def test_a_wait_does_not_branch_besides_its_timeout_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["nodes"].append({"id": "also", "type": "end"})
        doc["edges"].append({"from": "wait", "to": "also"})

    assert validate_text(edited(change)) == [
        Problem(
            "node 'wait'",
            "a wait_event node has 2 outgoing edges besides its timeout edge; only decision"
            " and parallel nodes branch",
        )
    ]


def test_a_wait_without_a_timeout_edge_has_one_outgoing_edge() -> None:
    def change(doc: dict[str, Any]) -> None:
        del doc["edges"][2]["timeout"]

    assert validate_text(edited(change)) == [
        Problem(
            "node 'wait'",
            "a wait_event node has 2 outgoing edges; only decision and parallel nodes branch",
        )
    ]


def test_a_non_boolean_timeout_flag_is_a_schema_problem() -> None:
    text = edited(lambda d: d["edges"][2].update(timeout="yes please"))
    assert Problem("edge 'wait -> too_late'", "timeout: 'yes please' is not of type 'boolean'") in (
        validate_text(text)
    )
