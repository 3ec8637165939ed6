"""The REST API of a running worker: what it answers, and how it refuses what it cannot do.

Every refusal is a 4xx naming what was wrong, never a 500.
"""

from __future__ import annotations

import re

import pytest
from workers import Reply, WorkerApi, WorkerProcess

from braidflow.compiled import choose

GREET = """
id: api-greet
name: Greeter
input:
  type: object
  required: [name]
  properties:
    name: {type: string}
nodes:
  - id: hello
    type: task
    params: {handler: test.echo, input: {greeting: "hello ${input.name}"}}
  - {id: done, type: end, params: {output: {greeting: "${nodes.hello.output.greeting}"}}}
edges:
  - {from: hello, to: done}
"""

BROKEN = """
id: api-broken
nodes:
  - {id: hr, type: task, params: {}}
  - {id: done, type: end}
edges:
  - {from: hr, to: done}
"""


@pytest.fixture(scope="module")
def api(shared_worker: WorkerProcess) -> WorkerApi:
    """The shared worker's API with the greeter deployed."""
    reply = shared_worker.api.deploy(GREET)
    assert reply.status == 201, reply
    return shared_worker.api


def refused(reply: Reply, status: int) -> dict:
    assert reply.status == status, reply
    assert isinstance(reply.body, dict) and reply.body["error"], reply
    return reply.body


def test_an_execution_runs_and_reads_back(api: WorkerApi, shared_worker: WorkerProcess) -> None:
    reply = api.post_json("/workflows/api-greet/executions", {"input": {"name": "ada"}})
    assert reply.status == 202, reply
    assert reply.body["status"] == "accepted" and reply.body["version"] == 1
    execution_id = reply.body["execution_id"]
    execution = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"greeting": "hello ada"}
    assert (execution["workflow_id"], execution["workflow_version"]) == ("api-greet", 1)
    assert execution["input"] == {"name": "ada"}
    assert execution["progress"] == {"total_nodes": 2, "completed_nodes": 2}
    assert [(n["node_id"], n["status"], n["attempt"]) for n in execution["nodes"]] == [
        ("hello", "completed", 1),
        ("done", "completed", 1),
    ]


def test_an_invalid_definition_is_refused_naming_the_node(api: WorkerApi) -> None:
    body = refused(api.deploy(BROKEN), 400)
    assert body["error"] == "invalid definition"
    assert any("'hr'" in p and "handler" in p for p in body["problems"]), body
    assert api.get("/workflows/api-broken").status == 404


def test_an_empty_or_unparsable_definition_is_refused(api: WorkerApi) -> None:
    assert "empty body" in refused(api.deploy(""), 400)["error"]
    body = refused(api.deploy("id: [unclosed"), 400)
    assert body["problems"], body


def test_a_body_that_is_not_json_is_refused(api: WorkerApi) -> None:
    reply = api.request(
        "POST", "/workflows/api-greet/executions", b'{"input": {', "application/json"
    )
    assert "not JSON" in refused(reply, 400)["error"]
    reply = api.post_json("/workflows/api-greet/executions", ["ada"])
    assert "JSON object" in refused(reply, 400)["error"]
    reply = api.post_json("/workflows/api-greet/executions", {"input": {}, "inptu": 1})
    assert "inptu" in refused(reply, 400)["error"]


def test_an_unknown_workflow_or_version_is_not_found(api: WorkerApi) -> None:
    reply = api.post_json("/workflows/no-such-flow/executions", {"input": {}})
    assert "no-such-flow" in refused(reply, 404)["error"]
    reply = api.post_json("/workflows/api-greet/executions", {"input": {}, "version": 99})
    assert "version 99" in refused(reply, 404)["error"]
    assert "no-such-flow" in refused(api.get("/workflows/no-such-flow"), 404)["error"]


def test_input_that_breaks_the_schema_is_refused_naming_the_field(api: WorkerApi) -> None:
    reply = api.post_json("/workflows/api-greet/executions", {"input": {"name": 42}})
    body = refused(reply, 422)
    assert any(p.startswith("input.name:") for p in body["problems"]), body
    reply = api.post_json("/workflows/api-greet/executions", {"input": {}})
    assert any("'name' is a required property" in p for p in refused(reply, 422)["problems"])


def test_an_unknown_execution_is_not_found(api: WorkerApi) -> None:
    assert "0123abcd" in refused(api.execution("0123abcd"), 404)["error"]


def test_deploying_the_same_text_keeps_the_version_and_a_change_makes_a_new_one(
    api: WorkerApi, shared_worker: WorkerProcess
) -> None:
    first = api.deploy(GREET.replace("api-greet", "api-versions"))
    assert (first.status, first.body) == (201, {"id": "api-versions", "version": 1})
    again = api.deploy(GREET.replace("api-greet", "api-versions"))
    assert (again.status, again.body) == (200, {"id": "api-versions", "version": 1})
    changed = GREET.replace("api-greet", "api-versions").replace("hello ", "hi ")
    second = api.deploy(changed)
    assert (second.status, second.body) == (201, {"id": "api-versions", "version": 2})

    shown = api.get("/workflows/api-versions")
    assert shown.status == 200, shown
    assert shown.body["versions"] == [1, 2]
    assert (shown.body["version"], shown.body["name"]) == (2, "Greeter")
    assert shown.body["definition"] == changed

    # The latest version runs unless the start names another.
    latest = api.start("api-versions", {"name": "ada"})
    reply = api.post_json(
        "/workflows/api-versions/executions", {"input": {"name": "ada"}, "version": 1}
    )
    assert (reply.status, reply.body["version"]) == (202, 1), reply
    done = shared_worker.wait_until_finished([latest, reply.body["execution_id"]])
    assert done[latest]["output"] == {"greeting": "hi ada"}
    assert done[latest]["workflow_version"] == 2
    assert done[reply.body["execution_id"]]["output"] == {"greeting": "hello ada"}


def test_workflows_are_listed_with_their_latest_version(api: WorkerApi) -> None:
    reply = api.get("/workflows")
    assert reply.status == 200, reply
    listed = {w["id"]: w for w in reply.body["workflows"]}
    assert listed["api-greet"]["version"] == 1
    assert listed["api-greet"]["name"] == "Greeter"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", listed["api-greet"]["deployed_at"]
    )
    assert "api-broken" not in listed


def test_health_readiness_and_metrics(api: WorkerApi) -> None:
    assert api.get("/health") == Reply(200, {"status": "ok"})
    assert api.get("/ready") == Reply(200, {"status": "ready"})
    api.start("api-greet", {"name": "metrics"})
    metrics = api.get("/metrics")
    assert metrics.status == 200
    assert "braidflow_transitions" in metrics.body
    applied = re.search(
        r'^braidflow_transitions_total\{kind="StartExecution",outcome="applied"\} (\S+)$',
        metrics.body,
        re.MULTILINE,
    )
    assert applied and float(applied.group(1)) >= 1, metrics.body
    # How the worker runs: on uvloop, and compiled where the install built the modules.
    modules = "compiled" if choose().compiled else "pure"
    assert (
        f'braidflow_worker_info{{event_loop="uvloop",modules="{modules}"}} 1.0' in metrics.body
    ), metrics.body
