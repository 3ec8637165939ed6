"""Dead letters: list them, and redrive a node's."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import (
    acting_name,
    department_of,
    may_read,
    refuse_by,
    require,
)
from braidflow.connectors.api.backend import Backend, backend_of
from braidflow.connectors.api.bodies import choice_query, limit_query, object_body
from braidflow.connectors.api.errors import NotFound
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
    role=Role.VIEWER,
)
async def list_dead_letters(request: web.Request) -> web.Response:
    """A payload over 16 KiB is kept as its head."""
    limit = limit_query(request.query, 100)
    kind = choice_query(request.query, "kind", KINDS)
    backend = backend_of(request)
    found = await backend.dead_letters(kind, request.query.get("workflow"), limit)
    readable = [d for d in found if may_read(request, _department(backend, d))]
    return web.json_response({"dead_letters": readable})


def _department(backend: Backend, letter: dict[str, Any]) -> str | None:
    """The department of a node dead letter's workflow (a record one has none)."""
    workflow_id = letter.get("workflow_id")
    if not workflow_id:
        return None
    versions = backend.versions(workflow_id)
    return department_of(versions[-1]) if versions else None


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
    audit=Audited(given=("input",), answer={"execution_id": "execution", "node_id": "node"}),
    role=Role.OPERATOR,
)
async def redrive(request: web.Request) -> web.Response:
    """409 for a record dead letter, or an execution that is not failed or parked."""
    body = await object_body(request, {"input", "by"})
    refuse_by(body)
    backend = backend_of(request)
    letter_id = request.match_info["id"]
    letter = await backend.dead_letter(letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id!r}")
    require(request, Role.OPERATOR, _department(backend, letter), f"dead letter {letter_id!r}")
    redriven = await backend.redrive(
        letter_id, body.get("input"), "input" in body, acting_name(request)
    )
    return web.json_response(redriven, status=202)
