"""A mistyped workflow id is answered with the deployed one it probably means."""

from __future__ import annotations

import json
import uuid

from workers import WorkerProcess


def child_text(workflow_id: str) -> str:
    return json.dumps({"id": workflow_id, "nodes": [{"id": "done", "type": "end"}], "edges": []})


def test_a_subworkflow_of_a_misspelt_workflow_fails_suggesting_the_deployed_one(
    shared_worker: WorkerProcess,
) -> None:
    child = f"payroll-run-{uuid.uuid4().hex[:6]}"
    assert shared_worker.api.deploy(child_text(child)).status == 201
    misspelt = child.replace("payroll", "payrol")
    parent = {
        "id": f"parent-{uuid.uuid4().hex[:6]}",
        "nodes": [
            {"id": "run", "type": "subworkflow", "params": {"workflow": misspelt}},
            {"id": "done", "type": "end"},
        ],
        "edges": [{"from": "run", "to": "done"}],
    }
    assert shared_worker.api.deploy(json.dumps(parent)).status == 201
    execution_id = shared_worker.api.start(parent["id"], {})
    view = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert view["status"] == "failed", view
    assert view["error"]["type"] == "UnknownWorkflow"
    assert f"unknown workflow {misspelt!r}; did you mean {child!r}?" in view["error"]["message"]


def test_starting_a_misspelt_workflow_suggests_the_deployed_one(
    shared_worker: WorkerProcess,
) -> None:
    workflow_id = f"onboarding-{uuid.uuid4().hex[:6]}"
    assert shared_worker.api.deploy(child_text(workflow_id)).status == 201
    misspelt = workflow_id.replace("onboarding", "onbaording")
    reply = shared_worker.api.post_json(f"/workflows/{misspelt}/executions", {"input": {}})
    assert reply.status == 404, reply
    assert reply.body["error"] == f"no workflow {misspelt!r}; did you mean {workflow_id!r}?"


def test_deploying_a_misspelt_handler_warns_with_the_registered_one(
    shared_worker: WorkerProcess,
) -> None:
    workflow_id = f"typo-{uuid.uuid4().hex[:6]}"
    text = json.dumps(
        {
            "id": workflow_id,
            "nodes": [
                {"id": "say", "type": "task", "params": {"handler": "test.ecko"}},
                {"id": "done", "type": "end"},
            ],
            "edges": [{"from": "say", "to": "done"}],
        }
    )
    reply = shared_worker.api.deploy(text)
    # A warning, not a refusal: another worker may have handlers this one lacks.
    assert reply.status == 201, reply
    assert reply.body["warnings"] == [
        "node 'say': no task handler 'test.ecko' is registered on this worker;"
        " did you mean 'test.echo'?"
    ]
    assert "warnings" not in shared_worker.api.deploy(child_text(f"fine-{workflow_id}")).body


def test_deploying_an_approval_whose_approver_reads_as_a_role_warns_with_the_role(
    shared_worker: WorkerProcess,
) -> None:
    workflow_id = f"sign-off-{uuid.uuid4().hex[:6]}"
    text = json.dumps(
        {
            "id": workflow_id,
            "nodes": [
                {"id": "ask", "type": "approval", "params": {"approvers": ["admin", "ana"]}},
                {"id": "done", "type": "end"},
            ],
            "edges": [{"from": "ask", "to": "done"}],
        }
    )
    reply = shared_worker.api.deploy(text)
    # A warning, not a refusal: a key may be named `admin`.
    assert reply.status == 201, reply
    assert reply.body["warnings"] == [
        "node 'ask': params.approvers: 'admin' is not a role, so only a principal named"
        " 'admin' may decide; did you mean the role 'owner'? (roles: viewer, operator,"
        " editor, owner, each covering those before it)"
    ]
