"""Drafts: a model writes a workflow definition from a sentence (braidflow/topology/drafts.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import department_of, may_read, require
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.bodies import object_body, string_field
from braidflow.connectors.api.errors import BadRequest, NotFound, Rejected, Unavailable
from braidflow.connectors.api.openapi import (
    ANY,
    INTEGER,
    STRING,
    Audited,
    Resource,
    json_reply,
    json_request,
    obj,
)
from braidflow.engine.dry_run import completed_nodes, dry_run, parse_answers
from braidflow.secrets import SecretError
from braidflow.tasks import NodeFailure
from braidflow.topology import load_workflow
from braidflow.topology.drafts import (
    MAX_ROUNDS,
    ROUNDS,
    Draft,
    diff,
    draft,
    dry_run_answers,
    known_of,
)
from braidflow.topology.layout import layout

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
                "input": {**ANY, "description": "The dry run's input; default {}"},
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
                    "graph": {
                        "type": "object",
                        "description": "When valid: its graph laid out as"
                        " `GET /workflows/{id}/graph` gives one, `version` null",
                    },
                    "dry_run": obj(
                        ["input", "path", "status"],
                        {
                            "input": ANY,
                            "path": {"type": "array", "items": STRING},
                            "status": STRING,
                            "output": ANY,
                            "error": obj(
                                ["type", "message"],
                                {"type": STRING, "message": STRING, "node_id": STRING},
                            ),
                        },
                    ),
                },
            ),
        )
    },
    refusals=[404, 422, 503],
    # Who asked which model: a draft spends the tenant's tokens. The sentence is not kept.
    audit=Audited(detail=("model", "connection", "edit")),
    role=Role.EDITOR,
)
async def create_draft(request: web.Request) -> web.Response:
    """The model is told the format's JSON Schema, the node kinds, the deployed workflows and
    event types; braidflow validates each answer and sends the problems back, until one is
    valid or `rounds` answers were given. A model that gives no usable answer is a 503; one
    that answers it will not draft, a 422 with its words."""
    backend = backend_of(request)
    body = await object_body(
        request, {"sentence", "model", "connection", "edit", "rounds", "input"}
    )
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
    if done.declined is not None:
        raise Rejected(
            f"model {model!r} at connection {connection!r} did not draft: {done.declined}"
        )
    view = _view(done, None if current is None else current.text, edited)
    if done.valid:
        view.update(_shown(done.text, body.get("input", {})))
    return web.json_response(view)


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


def _shown(text: str, input_: Any) -> dict[str, Any]:
    """A valid draft's graph and dry run, as `braidflow draft` prints them (docs/drafts.md)."""
    workflow = load_workflow(text)
    graph = {
        "id": workflow.id,
        "version": None,
        "department": workflow.definition.department,
        **layout(workflow.definition).as_json(),
    }
    path: list[str] = []
    state = None
    for _, result in dry_run(workflow, input_, parse_answers(dry_run_answers(workflow))):
        path += completed_nodes(result)
        state = result.state
    assert state is not None
    ran: dict[str, Any] = {"input": input_, "path": path, "status": state.status.value}
    if state.error is not None:
        error = {"type": state.error.type, "message": state.error.message}
        ran["error"] = error | ({"node_id": state.error.node_id} if state.error.node_id else {})
    else:
        ran["output"] = state.output
    return {"graph": graph, "dry_run": ran}
