"""`${secrets.NAME}`: accepted where only an executor's call reads it, refused where its value would
end up in state, and carried through the engine as text that data cannot forge."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from braidflow.engine import (
    NodeError,
    NodeFailed,
    RedriveNode,
    StartExecution,
    StepResult,
    TaskRequest,
    step,
)
from braidflow.topology import Problem, compile_workflow, validate_text
from braidflow.topology.expressions import compile_value
from braidflow.topology.secret_references import escape_dollars, resolve_references

CALL = {
    "id": "call",
    "type": "http",
    "params": {
        "method": "POST",
        "url": "https://crm.test/v1/${input.path}?key=${secrets.CRM_KEY}",
        "headers": {"Authorization": "Bearer ${secrets.CRM_TOKEN}", "X-Price": "5$"},
        "query": {"sig": "${ secrets.CRM_SIG }"},
        "body": {"note": "${input.note}", "token": "${secrets.CRM_TOKEN}", "raw": "$${kept}"},
    },
}


def workflow(*nodes: dict[str, Any], when: str | None = None) -> dict[str, Any]:
    ids = [n["id"] for n in nodes]
    edges: list[dict[str, Any]] = [
        {"from": a, "to": b} for a, b in zip(ids, [*ids[1:], "done"], strict=True)
    ]
    if when is not None:
        edges = [{"from": ids[0], "to": "done", "when": when}, {"from": ids[0], "to": "end"}]
        edges[1]["default"] = True
        nodes = (*nodes, {"id": "end", "type": "end"})
    return {"id": "wf", "nodes": [*nodes, {"id": "done", "type": "end"}], "edges": edges}


def problems(doc: dict[str, Any]) -> list[Problem]:
    return validate_text(yaml.safe_dump(doc, sort_keys=False))


def test_an_http_node_may_name_secrets_in_its_url_headers_query_and_body() -> None:
    assert problems(workflow(CALL)) == []


def test_an_inline_http_node_of_a_foreach_may_name_secrets() -> None:
    each = {
        "id": "each",
        "type": "foreach",
        "params": {
            "items": "${input.ids}",
            "do": {
                "type": "http",
                "params": {
                    "method": "GET",
                    "url": "https://x.test/${item}",
                    "headers": {"Key": "${secrets.CRM_KEY}"},
                },
            },
        },
    }
    assert problems(workflow(each)) == []


SECRET_ELSEWHERE = (
    "may be named only as a `${secrets.NAME}` hole of its own in an http node's url, headers,"
    " query or body, where the executor puts its value in at the moment of the call; anywhere"
    " else the value would end up in the execution's state"
)


@pytest.mark.parametrize(
    ("node", "label"),
    [
        (
            {"id": "t", "type": "task", "params": {"handler": "h", "input": {"k": "${secrets.K}"}}},
            "params.input",
        ),
        (
            {"id": "t", "type": "transform", "params": {"set": {"k": "x ${secrets.K}"}}},
            "params.set",
        ),
        (
            {"id": "t", "type": "publish", "params": {"type": "a.b", "data": "${secrets.K}"}},
            "params.data",
        ),
    ],
)
def test_a_secret_is_refused_where_its_value_would_end_up_in_state(
    node: dict[str, Any], label: str
) -> None:
    assert problems(workflow(node)) == [
        Problem("node 't'", f"{label}: `${{secrets.K}}` {SECRET_ELSEWHERE}")
    ]


def test_a_secret_is_refused_in_a_condition() -> None:
    doc = workflow({"id": "pick", "type": "decision"}, when="secrets.CRM_KEY == 'x'")
    assert problems(doc) == [
        Problem("edge 'pick -> done'", f"`secrets.CRM_KEY == 'x'`: a secret {SECRET_ELSEWHERE}")
    ]


def test_a_secret_inside_a_larger_expression_is_refused_even_in_an_http_node() -> None:
    call = {
        "id": "c",
        "type": "http",
        "params": {"method": "GET", "url": "https://x.test/${'k=' + secrets.K}"},
    }
    assert problems(workflow(call)) == [
        Problem("node 'c'", f"params.url: `'k=' + secrets.K`: a secret {SECRET_ELSEWHERE}")
    ]


def test_the_engine_sends_an_http_request_naming_secrets_never_holding_them() -> None:
    wf = compile_workflow(workflow(CALL))
    data = {"path": "a$b", "note": "${secrets.CRM_TOKEN} from a form"}
    result = step(wf, None, StartExecution("s", "ex", 1, "wf", 1, data))
    (request,) = [o for o in result.outgoing if isinstance(o, TaskRequest)]
    assert request.input == {
        "method": "POST",
        "url": "https://crm.test/v1/a$$b?key=${secrets.CRM_KEY}",
        "headers": {"Authorization": "Bearer ${secrets.CRM_TOKEN}", "X-Price": "5$$"},
        "query": {"sig": "${secrets.CRM_SIG}"},
        # Text from data stays text: its `$` doubled, it is never read as a reference.
        "body": {
            "note": "$${secrets.CRM_TOKEN} from a form",
            "token": "${secrets.CRM_TOKEN}",
            "raw": "$${kept}",
        },
        "expect_status": None,
    }
    values = {"CRM_KEY": "k1", "CRM_TOKEN": "t2", "CRM_SIG": "s3"}
    assert resolve_references(request.input, values.__getitem__) == {
        "method": "POST",
        "url": "https://crm.test/v1/a$b?key=k1",
        "headers": {"Authorization": "Bearer t2", "X-Price": "5$"},
        "query": {"sig": "s3"},
        "body": {"note": "${secrets.CRM_TOKEN} from a form", "token": "t2", "raw": "${kept}"},
        "expect_status": None,
    }


@pytest.mark.parametrize(
    "text", ["", "$", "$$", "a$", "${secrets.X}", "$${secrets.X}", "x$${", "$$$", "${}", "$ {"]
)
def test_any_text_from_data_comes_back_as_it_was(text: str) -> None:
    template = compile_value("${input.t}${secrets.X}${input.t}")
    rendered = template.render_request({"input": {"t": text}})
    assert resolve_references(rendered, lambda name: f"<{name}>") == f"{text}<X>{text}"
    assert resolve_references(escape_dollars({"v": [text]}), lambda n: "!") == {"v": [text]}


def test_a_redrive_may_patch_an_http_request_with_its_own_secrets_never_others() -> None:
    wf = compile_workflow(workflow(CALL))
    started = step(wf, None, StartExecution("s", "ex", 1, "wf", 1, {"path": "p", "note": "n"}))
    (request,) = [o for o in started.outgoing if isinstance(o, TaskRequest)]
    error = NodeError("http.5xx", "down")
    state = step(wf, started.state, NodeFailed("f", "ex", 2, "call", 1, error)).state
    assert state is not None and state.status == "failed"

    def redriven(patched: dict[str, Any]) -> StepResult:
        return step(wf, state, RedriveNode("r", "ex", 3, "call", "ops", patched))

    own = {**request.input, "url": "https://other.test/?k=${secrets.CRM_KEY}&p=$$5"}
    (sent,) = [o for o in redriven(own).outgoing if isinstance(o, TaskRequest)]
    assert sent.input == own
    reaching = {**request.input, "headers": {"X": "${secrets.DB_PASSWORD}", "Y": "${secrets.A}"}}
    refused = redriven(reaching)
    assert refused.outgoing == ()
    assert refused.ignored == (
        "a patched input of node 'call' names secrets its definition does not: A, DB_PASSWORD"
    )
