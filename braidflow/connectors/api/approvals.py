"""Approvals: the ones waiting for an answer, and deciding one."""

from __future__ import annotations

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import (
    acting_name,
    execution_department,
    may_read,
    refuse_by,
    require,
)
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.bodies import object_body, string_field
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.errors import Forbidden, NotFound
from braidflow.connectors.api.openapi import (
    ANY,
    STRING,
    Audited,
    Resource,
    json_reply,
    json_request,
    obj,
    path_param,
    query_param,
    ref,
)
from braidflow.topology.approvers import may_decide

approvals = Resource("approvals", "Human approvals: what waits for an answer, and the answer")


@approvals.operation(
    "GET",
    "/approvals",
    summary="Approvals waiting for an answer, oldest request first",
    parameters=[
        query_param("workflow", "Only those of this workflow", STRING),
        query_param("department", "Only those asked of this department", STRING),
    ],
    responses={
        200: json_reply(
            "The approvals",
            obj(["approvals"], {"approvals": {"type": "array", "items": ref("Approval")}}),
        )
    },
    role=Role.VIEWER,
)
async def pending_approvals(request: web.Request) -> web.Response:
    backend = backend_of(request)
    pending = await backend.pending_approvals(
        request.query.get("workflow"), request.query.get("department")
    )
    readable = [a for a in pending if may_read(request, execution_department(backend, a))]
    return web.json_response({"approvals": readable})


DECISION = obj(
    ["choice", "by", "decision_id"],
    {
        "execution_id": STRING,
        "node_id": STRING,
        "decision_id": STRING,
        "choice": STRING,
        "by": STRING,
        "comment": {"type": ["string", "null"]},
        "data": ANY,
        "decided_at": STRING,
        "applies_on_resume": {"type": "boolean"},
    },
)


@approvals.operation(
    "POST",
    "/executions/{id}/approvals/{node}",
    summary="Decide an approval; the first decision wins",
    parameters=[
        path_param("id", "The execution's id"),
        path_param("node", "The approval node's id"),
    ],
    body=json_request(
        obj(
            ["choice"],
            {
                "choice": {
                    **STRING,
                    "minLength": 1,
                    "description": "One of the approval's choices",
                },
                "comment": STRING,
                "data": {**ANY, "description": "The reply, checked against its schema (none: {})"},
            },
            closed=True,
        ),
        required=True,
    ),
    responses={
        200: json_reply("Decided", DECISION),
        202: json_reply(
            "The execution is paused: the decision is held and applies on resume", DECISION
        ),
    },
    refusals=[404, 409, 503],
    audit=Audited(detail=("choice",)),
    role=Role.OPERATOR,
)
async def decide(request: web.Request) -> web.Response:
    """The decision is the caller's (`by` is its credential's name); 403 when the approval
    names `approvers` and the caller is none of them. 409 when it is decided already or
    not waiting; 422 for a choice it does not offer or `data` that breaks the reply
    schema."""
    body = await object_body(request, {"choice", "by", "comment", "data"})
    refuse_by(body)
    string_field(body, "choice", required=True)
    string_field(body, "comment")
    backend = backend_of(request)
    execution_id, node_id = request.match_info["id"], request.match_info["node"]
    view = await backend.execution(execution_id, False)
    if view is None:
        raise NotFound(f"no execution {execution_id!r}")
    department = execution_department(backend, view)
    require(request, Role.OPERATOR, department, f"execution {execution_id!r}")
    deployed = backend.get(view["workflow_id"], view["workflow_version"])
    node = None if deployed is None else deployed.workflow.nodes.get(node_id)
    if node is not None and node.type == "approval":
        principal = principal_of(request)
        approvers = node.node.params.get("approvers")
        if not may_decide(approvers, principal.name, principal.role_in(department)):
            raise Forbidden(
                f"{principal.name} is not among the approvers of {node_id!r}:"
                f" {', '.join(approvers or ())}"
            )
    decided = await backend.decide(execution_id, node_id, {**body, "by": acting_name(request)})
    # Accepted, not applied: a paused execution holds the decision until it is resumed.
    return web.json_response(decided, status=202 if decided.get("applies_on_resume") else 200)
