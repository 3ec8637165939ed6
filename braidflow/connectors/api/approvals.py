"""Approvals: the ones waiting for an answer, and deciding one."""

from __future__ import annotations

from aiohttp import web

from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.bodies import object_body, string_field
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
)
async def pending_approvals(request: web.Request) -> web.Response:
    pending = backend_of(request).pending_approvals(
        request.query.get("workflow"), request.query.get("department")
    )
    return web.json_response({"approvals": pending})


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
            ["choice", "by"],
            {
                "choice": {
                    **STRING,
                    "minLength": 1,
                    "description": "One of the approval's choices",
                },
                "by": {**STRING, "minLength": 1, "description": "Who decides"},
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
    audit=Audited(detail=("choice", "by")),
)
async def decide(request: web.Request) -> web.Response:
    """409 when it is decided already or not waiting; 422 for a choice it does not offer
    or `data` that breaks the reply schema."""
    body = await object_body(request, {"choice", "by", "comment", "data"})
    string_field(body, "choice", required=True)
    string_field(body, "by", required=True)
    string_field(body, "comment")
    decided = await backend_of(request).decide(
        request.match_info["id"], request.match_info["node"], body
    )
    # Accepted, not applied: a paused execution holds the decision until it is resumed.
    return web.json_response(decided, status=202 if decided.get("applies_on_resume") else 200)
