"""Workflows: deploy a definition, list, show and remove them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import department_of, may_read, require
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.bodies import off_loop, text_body
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.departments import (
    DEPARTMENT_DEPLOYED,
    context_warnings,
    credential_warnings,
    department_text,
    deploy_department,
)
from braidflow.connectors.api.errors import BadRequest, NotFound
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    Audited,
    Resource,
    json_reply,
    nullable,
    obj,
    path_param,
    ref,
)
from braidflow.connectors.api.views import workflow_summary
from braidflow.topology import load_workflow
from braidflow.topology.approvers import role_like_approvers
from braidflow.topology.handler_names import misspelt_handlers

workflows = Resource("workflows", "Workflow definitions and their versions")
WORKFLOW_ID = path_param("id", "The workflow's id")


@workflows.operation(
    "POST",
    "/workflows",
    summary="Deploy a workflow definition (YAML or JSON)",
    body={
        "required": True,
        "content": {
            "application/yaml": {"schema": STRING},
            "application/json": {"schema": {"type": "object"}},
        },
    },
    responses={
        200: json_reply(
            "The same text was deployed before: its version",
            {"oneOf": [ref("Deployed"), DEPARTMENT_DEPLOYED]},
        ),
        201: json_reply("A new version", {"oneOf": [ref("Deployed"), DEPARTMENT_DEPLOYED]}),
    },
    refusals=[503],
    audit=Audited(answer={"id": "workflow", "department": "department", "version": "version"}),
    role=Role.EDITOR,
)
async def deploy(request: web.Request) -> web.Response:
    """Deploying the same text again keeps its version; a change makes a new one, recorded
    with who deployed it (`GET /workflows/{id}/versions`). A task handler no worker knows is
    deployed, with a warning naming the nearest one; an approver that reads as a role but is
    not one, with a warning naming the role. A `kind: Department` text deploys a
    department instead (the owner role; docs/departments.md), answered with its name."""
    backend = backend_of(request)
    text = await text_body(request)
    if not text.strip():
        raise BadRequest("empty body: send a workflow definition as YAML or JSON", field="body")
    if await department_text(text):
        return await deploy_department(request, text)
    await _check_deployer(request, text)
    deployment, created = await backend.deploy(text, principal_of(request).name)
    body: dict[str, Any] = {"id": deployment.workflow_id, "version": deployment.version}
    warnings = [
        *misspelt_handlers(deployment.workflow, backend.task_handlers()),
        *role_like_approvers(deployment.workflow),
        *context_warnings(backend, deployment.workflow),
        *credential_warnings(backend, deployment.workflow),
    ]
    if warnings:
        body["warnings"] = [str(w) for w in warnings]
    return web.json_response(body, status=201 if created else 200)


async def _check_deployer(request: web.Request, text: str) -> None:
    """A department's editor deploys only its department's workflows, and never over a
    workflow of another department. An editor of the whole tenant is not held up by a
    second parse of the text."""
    principal = principal_of(request)
    if principal.may(Role.EDITOR, principal.tenant):
        return
    workflow = await off_loop(len(text), load_workflow, text)
    current = backend_of(request).latest(workflow.id)
    if current is not None:
        require(request, Role.EDITOR, department_of(current), f"workflow {workflow.id!r}")
    department = workflow.definition.department
    require(request, Role.EDITOR, department, f"department {department!r}")


@workflows.operation(
    "GET",
    "/workflows",
    summary="The deployed workflows, each at its latest version",
    responses={
        200: json_reply(
            "The workflows",
            obj(["workflows"], {"workflows": {"type": "array", "items": ref("WorkflowSummary")}}),
        )
    },
    role=Role.VIEWER,
)
async def list_workflows(request: web.Request) -> web.Response:
    backend = backend_of(request)
    readable = [d for d in backend.all_latest() if may_read(request, department_of(d))]
    return web.json_response({"workflows": [workflow_summary(d) for d in readable]})


@workflows.operation(
    "GET",
    "/workflows/{id}",
    summary="A workflow: its latest definition and its versions",
    parameters=[WORKFLOW_ID],
    responses={
        200: json_reply(
            "The workflow",
            {
                "allOf": [
                    ref("WorkflowSummary"),
                    obj(
                        ["description", "versions", "definition"],
                        {
                            "description": nullable(STRING),
                            "versions": {"type": "array", "items": INTEGER},
                            "definition": STRING,
                        },
                    ),
                ]
            },
        )
    },
    refusals=[404],
    role=Role.VIEWER,
)
async def show_workflow(request: web.Request) -> web.Response:
    backend = backend_of(request)
    workflow_id = request.match_info["id"]
    latest = backend.latest(workflow_id)
    if latest is None:
        raise NotFound(f"no workflow {workflow_id!r}")
    require(request, Role.VIEWER, department_of(latest), f"workflow {workflow_id!r}")
    return web.json_response(
        {
            **workflow_summary(latest),
            "description": latest.workflow.definition.description,
            "versions": [d.version for d in backend.versions(workflow_id)],
            "definition": latest.text,
        }
    )


@workflows.operation(
    "DELETE",
    "/workflows/{id}",
    summary="Remove a workflow: it starts no more executions; those running finish",
    parameters=[WORKFLOW_ID],
    responses={
        200: json_reply(
            "Removed",
            obj(["id", "removed"], {"id": STRING, "removed": {"const": True}}),
        )
    },
    refusals=[404, 503],
    role=Role.EDITOR,
)
async def remove_workflow(request: web.Request) -> web.Response:
    workflow_id = request.match_info["id"]
    backend = backend_of(request)
    require(
        request,
        Role.EDITOR,
        department_of(backend.latest(workflow_id)),
        f"workflow {workflow_id!r}",
    )
    if not await backend.remove(workflow_id):
        raise NotFound(f"no workflow {workflow_id!r}")
    return web.json_response({"id": workflow_id, "removed": True})
