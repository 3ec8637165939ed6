"""Dead letters: list them, and redrive a node's."""

from __future__ import annotations

from aiohttp import web

from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.bodies import choice_query, limit_query, object_body, string_field
from braidflow.connectors.api.openapi import (
    ANY,
    INTEGER,
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

dead_letters = Resource("dead-letters", "What could not be done: failed nodes and poison records")
KINDS = ("node", "record")


@dead_letters.operation(
    "GET",
    "/dead-letters",
    summary="Dead letters, newest first",
    parameters=[
        query_param(
            "kind",
            "node: a node that failed; record: a record no agent could read",
            {"enum": list(KINDS)},
        ),
        query_param(
            "workflow", "Only those of this workflow (record dead letters have none)", STRING
        ),
        query_param("limit", "At most this many", {**INTEGER, "minimum": 1, "maximum": 1000}),
    ],
    responses={
        200: json_reply(
            "The dead letters",
            obj(["dead_letters"], {"dead_letters": {"type": "array", "items": ref("DeadLetter")}}),
        )
    },
    refusals=[400],
)
async def list_dead_letters(request: web.Request) -> web.Response:
    """A payload over 16 KiB is kept as its head."""
    limit = limit_query(request.query, 100)
    kind = choice_query(request.query, "kind", KINDS)
    found = backend_of(request).dead_letters(kind, request.query.get("workflow"), limit)
    return web.json_response({"dead_letters": found})


@dead_letters.operation(
    "POST",
    "/dead-letters/{id}/redrive",
    route="/dead-letters/{id:.+}/redrive",
    summary="Run a failed node again, with its input or a patched one",
    parameters=[path_param("id", "The dead letter's id")],
    body=json_request(
        obj(
            [],
            {
                "input": {**ANY, "description": "The node's input instead of the one it had"},
                "by": {**STRING, "description": "Who redrives"},
            },
            closed=True,
        )
    ),
    responses={
        202: json_reply(
            "Sent: the execution runs the node again",
            obj(
                ["dead_letter_id", "execution_id", "node_id"],
                {"dead_letter_id": STRING, "execution_id": STRING, "node_id": STRING},
                closed=True,
            ),
        )
    },
    refusals=[404, 409, 503],
    audit=Audited(
        detail=("by",), given=("input",), answer={"execution_id": "execution", "node_id": "node"}
    ),
)
async def redrive(request: web.Request) -> web.Response:
    """409 for a record dead letter, or an execution that is not failed or parked."""
    body = await object_body(request, {"input", "by"})
    by = string_field(body, "by") or ""
    redriven = await backend_of(request).redrive(
        request.match_info["id"], body.get("input"), "input" in body, by
    )
    return web.json_response(redriven, status=202)
