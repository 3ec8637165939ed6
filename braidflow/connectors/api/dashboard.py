"""What the web dashboard needs besides the rest of the API: who is signed in, a workflow's
graph laid out (braidflow.topology.layout), and the dashboard's own static files, served
at `/` and `/ui/...` without a credential (the API calls the pages make carry it)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import ROLES, department_of, may_read
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    Resource,
    json_reply,
    nullable,
    obj,
    path_param,
    query_param,
)
from braidflow.connectors.api.versions import check_workflow_role, version_of
from braidflow.connectors.execution_search import ExecutionSearch
from braidflow.engine.state import ExecutionStatus
from braidflow.topology.department_map import links
from braidflow.topology.kinds.approval import DEFAULT_CHOICES
from braidflow.topology.layout import layout, layout_graph

dashboard = Resource("dashboard", "What the web dashboard asks: who is signed in, graphs")
ROLE_NAMES = [role.value for role in Role]
FILES = Path(str(resources.files("braidflow") / "dashboard"))
INDEX = "index.html"
# Pages and scripts come from this worker only; the pages call this worker's API only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@dashboard.operation(
    "GET",
    "/me",
    summary="Who the credential is: its name, tenant and roles",
    responses={
        200: json_reply(
            "The caller",
            obj(
                ["name", "tenant", "roles"],
                {
                    "name": STRING,
                    "tenant": STRING,
                    "roles": {
                        "type": "array",
                        "items": obj(
                            ["role", "department"],
                            {
                                "role": {"enum": ROLE_NAMES},
                                "department": {
                                    **nullable(STRING),
                                    "description": "null: every department of the tenant",
                                },
                            },
                        ),
                    },
                },
            ),
        )
    },
    role=Role.VIEWER,
)
async def me(request: web.Request) -> web.Response:
    """The tenant-wide role first, then each department's by name."""
    principal = principal_of(request)
    roles = sorted(principal.roles.items(), key=lambda item: (item[0] is not None, item[0] or ""))
    return web.json_response(
        {
            "name": principal.name,
            "tenant": principal.tenant,
            "roles": [{"role": role.value, "department": dept} for dept, role in roles],
        }
    )


POINT = {"type": "array", "items": INTEGER, "minItems": 2, "maxItems": 2}
GRAPH = obj(
    ["id", "version", "department", "width", "height", "nodes", "edges"],
    {
        "id": STRING,
        "version": INTEGER,
        "department": nullable(STRING),
        "width": INTEGER,
        "height": INTEGER,
        "node_width": INTEGER,
        "node_height": INTEGER,
        "nodes": {
            "type": "array",
            "items": obj(
                ["id", "type", "name", "layer", "order", "x", "y"],
                {
                    "id": STRING,
                    "type": STRING,
                    "name": nullable(STRING),
                    "layer": INTEGER,
                    "order": INTEGER,
                    "x": INTEGER,
                    "y": INTEGER,
                    "choices": {"type": "array", "items": STRING},
                    "reply_schema": {"description": "An approval's reply schema, if any"},
                },
            ),
        },
        "edges": {
            "type": "array",
            "items": obj(
                ["source", "target", "label", "points", "back"],
                {
                    "source": STRING,
                    "target": STRING,
                    "label": nullable(STRING),
                    "points": {"type": "array", "items": POINT},
                    "back": {"type": "boolean"},
                },
            ),
        },
    },
)


@dashboard.operation(
    "GET",
    "/workflows/{id}/graph",
    summary="A version's graph laid out top-down, as `braidflow inspect` draws it",
    parameters=[
        path_param("id", "The workflow's id"),
        query_param("version", "The version (default: the latest)", {**INTEGER, "minimum": 1}),
    ],
    responses={200: json_reply("The layout: boxes' top-left corners, edges' points", GRAPH)},
    refusals=[400, 404],
    role=Role.VIEWER,
)
async def workflow_graph(request: web.Request) -> web.Response:
    """An approval node also carries its choices and reply schema: the reply form's."""
    backend = backend_of(request)
    workflow_id = request.match_info["id"]
    check_workflow_role(request, workflow_id, Role.VIEWER)
    history = backend.versions(workflow_id)
    raw = request.query.get("version", history[-1].version if history else 1)
    found = version_of(backend, workflow_id, raw, "version")
    drawn = layout(found.workflow.definition).as_json()
    params = {n.id: n.params for n in found.workflow.definition.nodes}
    for node in drawn["nodes"]:
        if node["type"] == "approval":
            node.update(_approval(params[node["id"]]))
    return web.json_response(
        {
            "id": workflow_id,
            "version": found.version,
            "department": department_of(found),
            **drawn,
        }
    )


# How many of a workflow's newest executions its success rate is taken over.
RECENT = 50
ENDED = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)


@dashboard.operation(
    "GET",
    "/map",
    summary="The caller's workflows as a graph: who calls whom, whose events start whom",
    parameters=[query_param("department", "Only this department's workflows", STRING)],
    responses={
        200: json_reply(
            "The map, laid out; each workflow with its recent success rate",
            {
                "allOf": [
                    obj(["width", "height", "nodes", "edges"], GRAPH["properties"]),
                    obj(
                        ["nodes"],
                        {
                            "nodes": {
                                "type": "array",
                                "items": obj(
                                    ["id", "department", "ended", "succeeded", "success_rate"],
                                    {
                                        "department": nullable(STRING),
                                        "ended": INTEGER,
                                        "succeeded": INTEGER,
                                        "success_rate": nullable({"type": "number"}),
                                    },
                                ),
                            }
                        },
                    ),
                ]
            },
        )
    },
    role=Role.VIEWER,
)
async def department_map(request: web.Request) -> web.Response:
    """Only workflows the caller may read; edges from the definitions (topology.department_map),
    success rate over each workflow's newest executions that ended (null: none ended)."""
    backend = backend_of(request)
    wanted = request.query.get("department")
    shown = [
        d
        for d in backend.all_latest()
        if may_read(request, department_of(d)) and (wanted is None or department_of(d) == wanted)
    ]
    found = links(d.workflow.definition for d in shown)
    drawn = layout_graph(
        [(d.workflow_id, "workflow", d.workflow.definition.name) for d in shown],
        [(link.source, link.target, link.label) for link in found],
    ).as_json()
    by_id = {d.workflow_id: d for d in shown}
    for node in drawn["nodes"]:
        recent = await backend.executions_of(node["id"], RECENT, ExecutionSearch())
        statuses = [e["status"] for e in recent]
        ended = [s for s in statuses if s in ENDED]
        succeeded = ended.count(ExecutionStatus.COMPLETED)
        node.update(
            department=department_of(by_id[node["id"]]),
            ended=len(ended),
            succeeded=succeeded,
            success_rate=round(succeeded / len(ended), 3) if ended else None,
        )
    for edge, link in zip(drawn["edges"], found, strict=True):
        edge["kind"] = link.kind
    return web.json_response(drawn)


def _approval(params: Any) -> dict[str, Any]:
    """The node's choices (the kind's default ones when it names none) and reply schema."""
    return {
        "choices": list(params.get("choices", DEFAULT_CHOICES)),
        "reply_schema": params.get("input"),
    }


async def _page(request: web.Request) -> web.StreamResponse:
    """A dashboard file; any path that is not one (a page's own route) gets the index."""
    name = request.match_info.get("path") or INDEX
    wanted = (FILES / name).resolve()
    if not wanted.is_relative_to(FILES.resolve()) or not wanted.is_file():
        if "." in Path(name).name:
            raise web.HTTPNotFound(text=f"no dashboard file {name!r}")
        wanted = FILES / INDEX
    return web.FileResponse(wanted, headers=SECURITY_HEADERS)


def serve_dashboard(app: web.Application) -> None:
    """Serve the dashboard's files at `/` and `/ui/...`, open to anyone (the files hold
    nothing secret; what they show comes from API calls that carry a credential)."""
    for path, name in (("/", "dashboard_index"), ("/ui/{path:.*}", "dashboard_file")):
        app.router.add_get(path, _page, name=name)
        app[ROLES][name] = None
