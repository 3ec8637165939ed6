"""Drafts: a model writes a workflow definition from a sentence (braidflow/topology/drafts.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import department_of, may_read, require
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.bodies import object_body, string_field
from braidflow.connectors.api.errors import BadRequest, NotFound, Unavailable
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    Audited,
    Resource,
    json_reply,
    json_request,
    obj,
)
from braidflow.secrets import SecretError
from braidflow.tasks import NodeFailure
from braidflow.topology.drafts import MAX_ROUNDS, ROUNDS, Draft, diff, draft, known_of

drafts = Resource("drafts", "Workflow definitions drafted by a model from a sentence")

_ROUND = obj(
    ["definition", "problems"],
    {"definition": STRING, "problems": {"type": "array", "items": STRING}},
)


@drafts.operation(
    "POST",
    "/drafts",
    summary="Draft a workflow definition from a sentence; nothing is deployed",
    body=json_request(
        obj(
            ["sentence", "model"],
            {
                "sentence": {**STRING, "minLength": 1, "description": "What the workflow does"},
                "model": {**STRING, "minLength": 1, "description": "The model to ask"},
                "connection": {
                    **STRING,
                    "description": "The llm connection to ask; default: the worker's only one",
                },
                "edit": {**STRING, "description": "Change this deployed workflow instead"},
                "rounds": {
                    **INTEGER,
                    "minimum": 1,
                    "maximum": MAX_ROUNDS,
                    "description": f"Answers asked for at most; default {ROUNDS}",
                },
            },
            closed=True,
        ),
        required=True,
    ),
    responses={
        200: json_reply(
            "The draft: `valid` when the last answer has no problems",
            obj(
                ["valid", "definition", "problems", "rounds"],
                {
                    "valid": {"type": "boolean"},
                    "definition": STRING,
                    "problems": {"type": "array", "items": STRING},
                    "rounds": {"type": "array", "items": _ROUND},
                    "diff": {**STRING, "description": "With `edit`: deployed -> drafted"},
                },
            ),
        )
    },
    refusals=[404, 503],
    # Who asked which model: a draft spends the tenant's tokens. The sentence is not kept.
    audit=Audited(detail=("model", "connection", "edit")),
    role=Role.EDITOR,
)
async def create_draft(request: web.Request) -> web.Response:
    """The model is told the format's JSON Schema, the node kinds, the deployed workflows and
    event types; braidflow validates each answer and sends the problems back, until one is
    valid or `rounds` answers were given. A model that gives no usable answer is a 503."""
    backend = backend_of(request)
    body = await object_body(request, {"sentence", "model", "connection", "edit", "rounds"})
    sentence = string_field(body, "sentence", required=True)
    model = string_field(body, "model", required=True)
    connection = _connection(string_field(body, "connection"), backend.draft_connections())
    rounds = body.get("rounds", ROUNDS)
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not 1 <= rounds <= MAX_ROUNDS:
        raise BadRequest(f"rounds: an integer from 1 to {MAX_ROUNDS}", field="rounds")
    edited = string_field(body, "edit")
    current = None
    if edited is not None:
        current = backend.latest(edited)
        if current is None:
            raise NotFound(f"no workflow {edited!r}")
        require(request, Role.EDITOR, department_of(current), f"workflow {edited!r}")
    deployed = [d.workflow for d in backend.all_latest() if may_read(request, department_of(d))]
    assert sentence is not None and model is not None
    try:
        done = await draft(
            backend.draft_ask(connection, model),
            sentence,
            known_of(deployed),
            current=None if current is None else current.text,
            rounds=rounds,
        )
    except (NodeFailure, SecretError) as exc:
        raise Unavailable(f"connection {connection!r}: {exc.type}: {exc.message}") from None
    return web.json_response(_view(done, None if current is None else current.text, edited))


def _connection(given: str | None, known: list[str]) -> str:
    if given is not None and given in known:
        return given
    if given is None and len(known) == 1:
        return known[0]
    listed = ", ".join(known) or "none: the worker has no connections file"
    if given is None:
        raise BadRequest(
            f"connection: required, one of the worker's ({listed})", field="connection"
        )
    raise BadRequest(
        f"connection: no {given!r} on this worker (its connections: {listed})", field="connection"
    )


def _view(done: Draft, current: str | None, edited: str | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "valid": done.valid,
        "definition": done.text,
        "problems": list(done.rounds[-1].problems),
        "rounds": [{"definition": r.text, "problems": list(r.problems)} for r in done.rounds],
    }
    if current is not None and edited is not None:
        view["diff"] = diff(current, done.text, edited)
    return view
