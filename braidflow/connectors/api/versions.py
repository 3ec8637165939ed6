"""A workflow's versions: list them with who deployed each and when, read one, roll back to
one, and diff two. The numbers come from the catalog (braidflow.topology.version_numbers)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import department_of, require
from braidflow.connectors.api.backend import Backend, Deployed, backend_of
from braidflow.connectors.api.bodies import object_body
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.errors import BadRequest, NotFound
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    TIME,
    Resource,
    json_reply,
    json_request,
    nullable,
    obj,
    path_param,
    query_param,
)
from braidflow.engine.state import iso_time
from braidflow.topology.version_diff import node_changes, text_diff

versions = Resource("versions", "A workflow's versions: who deployed each, rollback, diff")
WORKFLOW_ID = path_param("id", "The workflow's id")
VERSION_NUMBER = path_param("n", "The version number")
VERSION = obj(
    ["version", "deployed_at", "deployed_by", "restores", "rolled_back_from"],
    {
        "version": INTEGER,
        "deployed_at": TIME,
        "deployed_by": {
            **nullable(STRING),
            "description": "Who deployed it; null for versions deployed before that was kept",
        },
        "restores": {
            **nullable(INTEGER),
            "description": "Made by a rollback: the version whose text it brings back",
        },
        "rolled_back_from": {
            **nullable(INTEGER),
            "description": "Made by a rollback: the version that was the newest before",
        },
    },
)
ID_LIST = {"type": "array", "items": STRING}


def version_view(d: Deployed) -> dict[str, Any]:
    """One version as the versions listing shows it."""
    return {
        "version": d.version,
        "deployed_at": iso_time(d.deployed_at),
        "deployed_by": d.deployed_by,
        "restores": d.restores,
        "rolled_back_from": d.rolled_back_from,
    }


def _history(backend: Backend, workflow_id: str) -> list[Deployed]:
    """Every version of a workflow, removed ones' included; NotFound when there is none."""
    found = backend.versions(workflow_id)
    if not found:
        raise NotFound(f"no workflow {workflow_id!r}")
    return found


def check_workflow_role(request: web.Request, workflow_id: str, needed: Role) -> None:
    """Refuse a caller who may not do what `needed` may on the workflow's department."""
    found = backend_of(request).versions(workflow_id)
    if found:
        require(request, needed, department_of(found[-1]), f"workflow {workflow_id!r}")


def _number(raw: Any, name: str) -> int:
    """A version number from a body field, a path or a query: an integer from 1."""
    # 2.0 is an integer too, as JSON Schema counts.
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise BadRequest(f"{name}: {raw!r} is not a version number (an integer from 1)", field=name)
    return raw


def version_of(backend: Backend, workflow_id: str, raw: Any, name: str) -> Deployed:
    history = _history(backend, workflow_id)
    number = _number(raw, name)
    found = next((d for d in history if d.version == number), None)
    if found is None:
        raise NotFound(f"{name}: workflow {workflow_id!r} has no version {number}")
    return found


@versions.operation(
    "GET",
    "/workflows/{id}/versions",
    summary="A workflow's versions, oldest first: who deployed each, when, and rollbacks",
    parameters=[WORKFLOW_ID],
    responses={
        200: json_reply(
            "The versions",
            obj(
                ["id", "versions"],
                {"id": STRING, "versions": {"type": "array", "items": VERSION}},
            ),
        )
    },
    refusals=[404],
    role=Role.VIEWER,
)
async def list_versions(request: web.Request) -> web.Response:
    """A removed workflow's versions are still listed."""
    workflow_id = request.match_info["id"]
    check_workflow_role(request, workflow_id, Role.VIEWER)
    history = _history(backend_of(request), workflow_id)
    return web.json_response({"id": workflow_id, "versions": [version_view(d) for d in history]})


@versions.operation(
    "GET",
    "/workflows/{id}/versions/{n}",
    summary="One version of a workflow: its text, who deployed it and when",
    parameters=[WORKFLOW_ID, VERSION_NUMBER],
    responses={
        200: json_reply(
            "The version",
            {
                "allOf": [
                    VERSION,
                    obj(["id", "definition"], {"id": STRING, "definition": STRING}),
                ]
            },
        )
    },
    refusals=[400, 404],
    role=Role.VIEWER,
)
async def show_version(request: web.Request) -> web.Response:
    workflow_id = request.match_info["id"]
    check_workflow_role(request, workflow_id, Role.VIEWER)
    found = version_of(backend_of(request), workflow_id, request.match_info["n"], "n")
    return web.json_response({"id": workflow_id, **version_view(found), "definition": found.text})


@versions.operation(
    "POST",
    "/workflows/{id}/rollback",
    summary="Make an older version's text current again, as a new version",
    parameters=[WORKFLOW_ID],
    body=json_request(
        obj(["version"], {"version": {**INTEGER, "minimum": 1}}, closed=True), required=True
    ),
    responses={
        200: json_reply(
            "That text is the current version already: nothing new (as a redeploy of it)",
            obj(["id", "version"], {"id": STRING, "version": INTEGER}),
        ),
        201: json_reply(
            "A new version with the text of `restores`",
            obj(
                ["id", "version", "restores", "rolled_back_from"],
                {
                    "id": STRING,
                    "version": INTEGER,
                    "restores": INTEGER,
                    "rolled_back_from": INTEGER,
                },
            ),
        ),
    },
    refusals=[404, 503],
    role=Role.EDITOR,
)
async def rollback(request: web.Request) -> web.Response:
    """The history stays: the new version records who rolled back, to which version and from
    which. A removed workflow is not rolled back (404): deploy it again instead."""
    backend = backend_of(request)
    workflow_id = request.match_info["id"]
    body = await object_body(request, {"version"})
    if "version" not in body:
        raise BadRequest("version: required, the version to roll back to", field="version")
    if backend.latest(workflow_id) is None:
        raise NotFound(f"no workflow {workflow_id!r}")
    check_workflow_role(request, workflow_id, Role.EDITOR)
    target = version_of(backend, workflow_id, body["version"], "version")
    deployment, created = await backend.deploy(
        target.text, principal_of(request).name, target.version
    )
    answer: dict[str, Any] = {"id": workflow_id, "version": deployment.version}
    if not created:
        return web.json_response(answer)
    answer["restores"] = deployment.restores
    answer["rolled_back_from"] = deployment.rolled_back_from
    return web.json_response(answer, status=201)


@versions.operation(
    "GET",
    "/workflows/{id}/diff",
    summary="What changed from one version to another: a unified diff and the nodes",
    parameters=[
        WORKFLOW_ID,
        {**query_param("from", "The older version", {**INTEGER, "minimum": 1}), "required": True},
        {**query_param("to", "The newer version", {**INTEGER, "minimum": 1}), "required": True},
    ],
    responses={
        200: json_reply(
            "The diff",
            obj(
                ["id", "from", "to", "diff", "nodes"],
                {
                    "id": STRING,
                    "from": INTEGER,
                    "to": INTEGER,
                    "diff": {**STRING, "description": "Unified diff of the texts; empty if equal"},
                    "nodes": obj(
                        ["added", "removed", "changed"],
                        {"added": ID_LIST, "removed": ID_LIST, "changed": ID_LIST},
                    ),
                },
            ),
        )
    },
    refusals=[400, 404],
    role=Role.VIEWER,
)
async def diff(request: web.Request) -> web.Response:
    """A node counts as changed when it, or an edge leaving it, differs."""
    backend = backend_of(request)
    workflow_id = request.match_info["id"]
    check_workflow_role(request, workflow_id, Role.VIEWER)
    given = {}
    for name in ("from", "to"):
        if name not in request.query:
            raise BadRequest(f"{name}: required, a version number", field=name)
        given[name] = version_of(backend, workflow_id, request.query[name], name)
    old, new = given["from"], given["to"]
    changes = node_changes(old.workflow.definition, new.workflow.definition)
    return web.json_response(
        {
            "id": workflow_id,
            "from": old.version,
            "to": new.version,
            "diff": text_diff(
                old.text, new.text, f"{workflow_id}@{old.version}", f"{workflow_id}@{new.version}"
            ),
            "nodes": {
                "added": list(changes.added),
                "removed": list(changes.removed),
                "changed": list(changes.changed),
            },
        }
    )
