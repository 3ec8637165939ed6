"""Versions against a real worker: who deployed each and when, rollback as a new version, an
execution staying on its version across a rollback, a start naming a version, a diff, and the
refusals (404 naming the unknown workflow or version, 400 naming the field)."""

from __future__ import annotations

import uuid
from typing import Any

from click.testing import CliRunner
from waiting import until
from workers import SUITE_OWNER, WorkerProcess

from braidflow.cli import main

# v1 ends at once; v2 waits for an approval first, so its execution outlives the rollback.
V1 = """
id: {id}
nodes:
  - {{id: done, type: end, params: {{output: {{made_by: one}}}}}}
edges: []
"""
V2 = """
id: {id}
nodes:
  - {{id: ask, type: approval, params: {{message: "go?", choices: [go]}}}}
  - {{id: done, type: end, params: {{output: {{made_by: two}}}}}}
edges:
  - {{from: ask, to: done}}
"""


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def cli(worker: WorkerProcess, *args: str) -> Any:
    """The real `braidflow` command against the worker's API."""
    return CliRunner(env={"BRAIDFLOW_API_KEY": worker.api.key}).invoke(
        main, [*args, "--api", worker.api.base_url]
    )


def deployed(worker: WorkerProcess, *texts: str) -> str:
    """Deploy each text in turn (versions 1, 2, ...); the workflow id."""
    workflow = unique("versioned")
    for number, text in enumerate(texts, 1):
        reply = worker.api.deploy(text.format(id=workflow))
        assert (reply.status, reply.body["version"]) == (201, number), reply
    return workflow


def waiting_at_approval(worker: WorkerProcess, execution: str) -> bool:
    view = worker.api.execution(execution)
    return view.status == 200 and any(
        n["node_id"] == "ask" and n["status"] == "waiting" for n in view.body["nodes"]
    )


def test_each_version_records_who_deployed_it_and_when(shared_worker: WorkerProcess) -> None:
    workflow = deployed(shared_worker, V1, V2)
    listed = shared_worker.api.get(f"/workflows/{workflow}/versions")
    assert listed.status == 200, listed
    assert [v["version"] for v in listed.body["versions"]] == [1, 2]
    for version in listed.body["versions"]:
        assert version["deployed_by"] == SUITE_OWNER
        assert version["deployed_at"].endswith("Z")
        assert (version["restores"], version["rolled_back_from"]) == (None, None)
    one = shared_worker.api.get(f"/workflows/{workflow}/versions/1")
    assert one.status == 200, one
    assert one.body["definition"] == V1.format(id=workflow)
    assert (one.body["id"], one.body["version"], one.body["deployed_by"]) == (
        workflow,
        1,
        SUITE_OWNER,
    )


def test_a_rollback_is_a_new_version_and_a_running_execution_stays_on_its_own(
    shared_worker: WorkerProcess,
) -> None:
    api = shared_worker.api
    workflow = deployed(shared_worker, V1, V2)
    on_two = api.start(workflow, {})
    until(lambda: waiting_at_approval(shared_worker, on_two), "the approval of version 2")

    rolled = api.post_json(f"/workflows/{workflow}/rollback", {"version": 1})
    assert rolled.status == 201, rolled
    assert rolled.body == {"id": workflow, "version": 3, "restores": 1, "rolled_back_from": 2}
    three = api.get(f"/workflows/{workflow}/versions/3").body
    assert three["definition"] == V1.format(id=workflow)
    assert (three["restores"], three["rolled_back_from"], three["deployed_by"]) == (
        1,
        2,
        SUITE_OWNER,
    )
    # The history stays whole, and the latest is the rollback.
    assert api.get(f"/workflows/{workflow}").body["versions"] == [1, 2, 3]
    assert api.get(f"/workflows/{workflow}").body["version"] == 3

    on_three = api.start(workflow, {})
    decided = api.post_json(f"/executions/{on_two}/approvals/ask", {"choice": "go"})
    assert decided.status == 200, decided
    finished = shared_worker.wait_until_finished([on_two, on_three])
    assert (finished[on_two]["workflow_version"], finished[on_two]["output"]) == (
        2,
        {"made_by": "two"},
    )
    assert (finished[on_three]["workflow_version"], finished[on_three]["output"]) == (
        3,
        {"made_by": "one"},
    )


def test_a_rollback_to_the_current_text_answers_as_a_redeploy_of_it(
    shared_worker: WorkerProcess,
) -> None:
    workflow = deployed(shared_worker, V1, V2)
    api = shared_worker.api
    assert api.post_json(f"/workflows/{workflow}/rollback", {"version": 1}).status == 201
    # Version 3 has version 1's text: rolling back to either is nothing new.
    for target in (1, 3):
        again = api.post_json(f"/workflows/{workflow}/rollback", {"version": target})
        assert (again.status, again.body) == (200, {"id": workflow, "version": 3})
    assert api.deploy(V1.format(id=workflow)).body["version"] == 3
    assert [v["version"] for v in api.get(f"/workflows/{workflow}/versions").body["versions"]] == [
        1,
        2,
        3,
    ]


def test_a_start_may_name_a_version(shared_worker: WorkerProcess) -> None:
    workflow = deployed(shared_worker, V2, V1)
    api = shared_worker.api
    named = api.post_json(f"/workflows/{workflow}/executions", {"input": {}, "version": 1})
    assert (named.status, named.body["version"]) == (202, 1)
    until(lambda: waiting_at_approval(shared_worker, named.body["execution_id"]), "version 1")

    ran = cli(shared_worker, "run", workflow, "--version", "2", "--wait")
    assert ran.exit_code == 0, ran.output
    execution = ran.stdout.splitlines()[0]
    assert api.execution(execution).body["workflow_version"] == 2

    unknown = api.post_json(f"/workflows/{workflow}/executions", {"input": {}, "version": 7})
    assert unknown.status == 404 and "version 7" in unknown.body["error"], unknown
    missing = cli(shared_worker, "run", workflow, "--version", "7")
    assert missing.exit_code == 1 and "version 7" in missing.output, missing.output


def test_a_diff_of_two_versions_through_the_api_and_the_command_line(
    shared_worker: WorkerProcess,
) -> None:
    workflow = deployed(shared_worker, V1, V2)
    reply = shared_worker.api.get(f"/workflows/{workflow}/diff?from=1&to=2")
    assert reply.status == 200, reply
    assert reply.body["nodes"] == {"added": ["ask"], "removed": [], "changed": ["done"]}
    assert reply.body["diff"].startswith(f"--- {workflow}@1\n+++ {workflow}@2\n")
    assert (
        '+  - {id: ask, type: approval, params: {message: "go?", choices: [go]}}\n'
        in (reply.body["diff"])
    )
    same = shared_worker.api.get(f"/workflows/{workflow}/diff?from=2&to=2").body
    assert same["diff"] == "" and same["nodes"] == {"added": [], "removed": [], "changed": []}

    shown = cli(shared_worker, "diff", workflow, "1", "2")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[:3] == ["added: ask", "changed: done", f"--- {workflow}@1"]

    rolled = cli(shared_worker, "rollback", workflow, "1")
    assert rolled.exit_code == 0, rolled.output
    assert rolled.stdout == (
        f"{workflow} version 3: the text of version 1 (rolled back from version 2)\n"
    )
    listed = cli(shared_worker, "versions", workflow)
    assert listed.exit_code == 0, listed.output
    assert [line.split("  ")[0] for line in listed.stdout.splitlines()] == ["v1", "v2", "v3"]
    assert listed.stdout.splitlines()[2].endswith(f"by {SUITE_OWNER}  rollback to v1 from v2")


def test_unknown_workflows_and_versions_are_404_and_bad_bodies_400_naming_the_field(
    shared_worker: WorkerProcess,
) -> None:
    api = shared_worker.api
    workflow = deployed(shared_worker, V1)
    nobody = unique("nobody")
    for path in (
        f"/workflows/{nobody}/versions",
        f"/workflows/{nobody}/versions/1",
        f"/workflows/{nobody}/diff?from=1&to=1",
    ):
        reply = api.get(path)
        assert reply.status == 404 and nobody in reply.body["error"], (path, reply)
    gone = api.post_json(f"/workflows/{nobody}/rollback", {"version": 1})
    assert gone.status == 404 and nobody in gone.body["error"], gone

    missing = api.get(f"/workflows/{workflow}/versions/9")
    assert missing.status == 404 and "no version 9" in missing.body["error"], missing
    rolled = api.post_json(f"/workflows/{workflow}/rollback", {"version": 9})
    assert rolled.status == 404 and "no version 9" in rolled.body["error"], rolled
    diffed = api.get(f"/workflows/{workflow}/diff?from=1&to=9")
    assert (diffed.status, diffed.body.get("field")) == (404, None), diffed
    assert "to: " in diffed.body["error"] and "no version 9" in diffed.body["error"]

    for body, field in (
        ({}, "version"),
        ({"version": "one"}, "version"),
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
        ({"version": 1, "by": "eve"}, "by"),
        ([1], "body"),
    ):
        reply = api.post_json(f"/workflows/{workflow}/rollback", body)
        assert (reply.status, reply.body["field"]) == (400, field), (body, reply)
    not_json = api.request("POST", f"/workflows/{workflow}/rollback", b"{", "application/json")
    assert (not_json.status, not_json.body["field"]) == (400, "body")
    for query, field in (("to=1", "from"), ("from=1", "to"), ("from=x&to=1", "from")):
        reply = api.get(f"/workflows/{workflow}/diff?{query}")
        assert (reply.status, reply.body["field"]) == (400, field), (query, reply)
    bad = api.get(f"/workflows/{workflow}/versions/first")
    assert (bad.status, bad.body["field"]) == (400, "n")
    assert cli(shared_worker, "diff", nobody, "1", "2").exit_code == 1


def test_a_removed_workflow_keeps_its_history_but_is_not_rolled_back(
    shared_worker: WorkerProcess,
) -> None:
    api = shared_worker.api
    workflow = deployed(shared_worker, V1, V2)
    assert api.request("DELETE", f"/workflows/{workflow}").status == 200
    listed = api.get(f"/workflows/{workflow}/versions")
    assert [v["version"] for v in listed.body["versions"]] == [1, 2], listed
    refused = api.post_json(f"/workflows/{workflow}/rollback", {"version": 1})
    assert refused.status == 404 and workflow in refused.body["error"], refused
    # Deploying it again goes on numbering, as before.
    assert api.deploy(V1.format(id=workflow)).body["version"] == 3
