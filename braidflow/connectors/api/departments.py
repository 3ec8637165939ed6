"""Departments: read their definitions. A department is deployed like a workflow, by
`POST /workflows` with a `kind: Department` text (braidflow.connectors.api.workflows), which
needs the owner role."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import may_read, require
from braidflow.connectors.api.backend import Backend, DeployedDepartment, backend_of
from braidflow.connectors.api.bodies import off_loop
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.errors import NotFound
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    TIME,
    Resource,
    json_reply,
    nullable,
    obj,
    path_param,
)
from braidflow.engine.state import iso_time
from braidflow.secrets import credentials_allowed
from braidflow.topology.credentials import refused_secrets
from braidflow.topology.departments import (
    declares_department,
    load_department,
    may_declare_department,
    unknown_context_names,
)
from braidflow.topology.loading import Problem, parse_text
from braidflow.topology.workflow import Workflow

departments = Resource("departments", "Departments: shared context, settings, who may call them")
DEPARTMENT_NAME = path_param("name", "The department's name")
SUMMARY = obj(
    ["name", "version", "description", "deployed_at", "deployed_by"],
    {
        "name": STRING,
        "version": INTEGER,
        "description": nullable(STRING),
        "deployed_at": TIME,
        "deployed_by": nullable(STRING),
    },
)

DEPARTMENT_DEPLOYED = obj(
    ["department", "version"],
    {
        "department": {**STRING, "description": "A `kind: Department` text: its name"},
        "version": INTEGER,
        "warnings": {
            "type": "array",
            "items": STRING,
            "description": "Secrets deployed workflows name that its credentials list now"
            " keeps from them, by workflow and node",
        },
    },
)


def _summary(found: DeployedDepartment) -> dict[str, Any]:
    return {
        "name": found.name,
        "version": found.version,
        "description": found.department.description,
        "deployed_at": iso_time(found.deployed_at),
        "deployed_by": found.deployed_by,
    }


async def department_text(text: str) -> bool:
    """Whether a deployed text is a department definition rather than a workflow."""
    if not may_declare_department(text):
        return False
    try:
        doc = await off_loop(len(text), parse_text, text)
    except ValueError:
        # Not parsable at all: the workflow's loading reports it, as before.
        return False
    return declares_department(doc)


async def deploy_department(request: web.Request, text: str) -> web.Response:
    """Deploy a department definition for an owner of it: 201 for a new version, 200 when
    the text is that of the latest."""
    backend = backend_of(request)
    department = await off_loop(len(text), _name_of, text)
    require(request, Role.OWNER, department, f"department {department!r}")
    found, created = await backend.deploy_department(text, principal_of(request).name)
    body: dict[str, Any] = {"department": found.name, "version": found.version}
    # A list may take a secret from workflows that used it: say which, as a deploy of them would.
    warnings = [
        f"workflow {d.workflow_id!r}, {problem}"
        for d in backend.all_latest()
        for problem in credential_warnings(backend, d.workflow)
    ]
    if warnings:
        body["warnings"] = warnings
    return web.json_response(body, status=201 if created else 200)


def context_warnings(backend: Backend, workflow: Workflow) -> list[Problem]:
    """`dept.*` names a workflow reads that its deployed department does not define."""
    found = backend.department(workflow.definition.department or "")
    return [] if found is None else unknown_context_names(workflow, found.department)


def credential_warnings(backend: Backend, workflow: Workflow) -> list[Problem]:
    """`${secrets.NAME}` a workflow names that the deployed departments' credentials lists
    keep from it."""
    lists = {d.name: d.department.credentials for d in backend.departments()}
    return refused_secrets(workflow, credentials_allowed(workflow.definition.department, lists))


def _name_of(text: str) -> str:
    """The name a department text gives, validated with the rest of it."""
    return load_department(text).name


@departments.operation(
    "GET",
    "/departments",
    summary="The deployed departments, each at its latest version",
    responses={
        200: json_reply(
            "The departments",
            obj(["departments"], {"departments": {"type": "array", "items": SUMMARY}}),
        )
    },
    role=Role.VIEWER,
)
async def list_departments(request: web.Request) -> web.Response:
    readable = [d for d in backend_of(request).departments() if may_read(request, d.name)]
    return web.json_response({"departments": [_summary(d) for d in readable]})


@departments.operation(
    "GET",
    "/departments/{name}",
    summary="A department: its workflows, shared context, settings and allowed callers",
    parameters=[DEPARTMENT_NAME],
    responses={
        200: json_reply(
            "The department",
            {
                "allOf": [
                    SUMMARY,
                    obj(
                        ["workflows", "context", "settings", "allow_callers", "definition"],
                        {
                            "workflows": {
                                "type": "array",
                                "items": STRING,
                                "description": "Ids of the workflows whose `department` names it",
                            },
                            "context": {
                                "type": "object",
                                "description": "Read as `dept.<name>` by its workflows",
                            },
                            "settings": {"type": "object"},
                            "allow_callers": {
                                "oneOf": [
                                    {"const": "any"},
                                    {"type": "array", "items": STRING},
                                ]
                            },
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
async def show_department(request: web.Request) -> web.Response:
    backend = backend_of(request)
    name = request.match_info["name"]
    require(request, Role.VIEWER, name, f"department {name!r}")
    found = backend.department(name)
    if found is None:
        raise NotFound(f"no department {name!r}")
    department = found.department
    doc = await off_loop(len(found.text), parse_text, found.text)
    callers = department.allow_callers
    return web.json_response(
        {
            **_summary(found),
            "workflows": [
                d.workflow_id
                for d in backend.all_latest()
                if d.workflow.definition.department == name
            ],
            "context": dict(department.context),
            "settings": doc.get("settings") or {},
            "allow_callers": callers if isinstance(callers, str) else list(callers),
            "definition": found.text,
        }
    )
