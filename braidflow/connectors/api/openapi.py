"""The API's OpenAPI 3.1 document, made from the operations each resource module declares.

A route and its description are declared together (`Resource.operation`), so a route
cannot be served without being described; `document` gathers them, and
`GET /api/v1/openapi.json` serves it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.engine.state import ExecutionStatus

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = dict[str, Any]

API_VERSION = "1"
PREFIX = f"/api/v{API_VERSION}"
ERROR_DESCRIPTIONS = {
    400: "Malformed: not JSON, a field of the wrong type, an unknown field (`field` names it)",
    401: "No credential, or one that is unknown, revoked or expired (or a webhook call not"
    " signed as its secret requires)",
    403: "The credential's role may not do this (here, or in this object's department)",
    404: "No such resource",
    409: "Does not fit the current state",
    413: "Over a size limit; the message names the size and the limit",
    422: "Breaks a rule of the workflow or a limit; `problems` name the fields",
    503: "Not available now (a worker behind, or not reached); retry",
}
# What a request with a body can always be refused for: not JSON or a wrong field, over the
# size limit, nested deeper than the limit.
BODY_REFUSALS = (400, 413, 422)
# What any operation that needs a credential can be refused for.
CREDENTIAL_REFUSALS = (401, 403)
BEARER = "bearer"


@dataclass(frozen=True)
class Audited:
    """What the audit record of a change keeps besides its action, path ids, who and when.

    `detail`: body fields kept as the detail (short scalars only: see schemas/audit.py),
    for fields that can hold nothing secret or personal;
    `answer`: answer fields kept as target ids, each under the name given (a deploy's `id`
    becomes `workflow`).
    """

    detail: tuple[str, ...] = ()
    answer: Mapping[str, str] = field(default_factory=dict)
    given: tuple[str, ...] = ()
    """Body fields whose presence alone is kept (`"(given)"`): a patched input, never its value."""


AUDITED = Audited()
"""Every operation but a GET is audited, by default with its path ids alone."""


@dataclass(frozen=True)
class Operation:
    """One route: `method` on `path` (an OpenAPI path template) served by `handler`.

    `route` is the aiohttp path when it differs from `path` (a regex for an id that may
    hold slashes); `spec` is the OpenAPI operation object; `audit` what its audit record
    keeps (None: not audited, as no GET is); `role` the least role a caller needs (None: no
    credential at all, e.g. the health checks).
    """

    method: str
    path: str
    handler: Handler
    spec: Mapping[str, Any]
    route: str | None = None
    audit: Audited | None = None
    role: Role | None = None


@dataclass
class Resource:
    """The operations of one resource (a tag of the document), declared next to their handlers."""

    tag: str
    description: str
    operations: list[Operation] = field(default_factory=list)

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        responses: Mapping[int, Mapping[str, Any]],
        parameters: Iterable[Mapping[str, Any]] = (),
        body: Mapping[str, Any] | None = None,
        refusals: Iterable[int] = (),
        route: str | None = None,
        audit: Audited | None = AUDITED,
        role: Role | None,
    ) -> Callable[[Handler], Handler]:
        """Declare `handler` as `method` on PREFIX + `path`, described by the rest.

        A 2xx answer to any method but GET is audited (`connectors.api.audit`) as `audit`
        says; `audit=None` for the few operations that change nothing a principal did.
        `role`: the least role a caller needs, always said (None: open to anyone, with
        no credential).
        """

        def declare(handler: Handler) -> Handler:
            answers = {str(status): dict(answer) for status, answer in responses.items()}
            audited = audit is not None and method.upper() != "GET"
            # An audited change is refused with 503 when its audit record cannot be written.
            also = (set(BODY_REFUSALS) if body else set()) | ({503} if audited else set())
            if role is not None:
                also |= set(CREDENTIAL_REFUSALS)
            for status in sorted(set(refusals) | also):
                answers[str(status)] = refused(status)
            spec: dict[str, Any] = {
                "operationId": handler.__name__,
                "summary": summary,
                "tags": [self.tag],
                "responses": answers,
            }
            if handler.__doc__:
                spec["description"] = handler.__doc__.strip()
            if parameters:
                spec["parameters"] = [dict(p) for p in parameters]
            if body is not None:
                spec["requestBody"] = dict(body)
            spec["security"] = [] if role is None else [{BEARER: []}]
            if role is not None:
                spec["x-braidflow-role"] = role.value
            self.operations.append(
                Operation(
                    method.upper(),
                    PREFIX + path,
                    handler,
                    spec,
                    None if route is None else PREFIX + route,
                    audit if audited else None,
                    role,
                )
            )
            return handler

        return declare

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Serve every operation of this resource on `router`."""
        for op in self.operations:
            router.add_route(
                op.method, op.route or op.path, op.handler, name=op.spec["operationId"]
            )


def document(resources: Iterable[Resource]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `resources`."""
    resources = list(resources)
    paths: dict[str, dict[str, Any]] = {}
    for resource in resources:
        for op in resource.operations:
            paths.setdefault(op.path, {})[op.method.lower()] = dict(op.spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "braidflow",
            "version": API_VERSION,
            "description": (
                "The REST API every braidflow worker serves. Errors are JSON"
                " `{error, problems?, field?}` with the status that says what was wrong."
            ),
        },
        "tags": [{"name": r.tag, "description": r.description} for r in resources],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (`braidflow keys create`) or an identity"
                    " provider's token; `x-braidflow-role` on an operation is the least"
                    " role it needs",
                }
            },
        },
    }


def ref(name: str) -> Schema:
    """A reference to the component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_reply(description: str, schema: Schema) -> dict[str, Any]:
    """A response with a JSON body of `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def refused(status: int) -> dict[str, Any]:
    """The response of a refusal with `status`: an Error body."""
    return json_reply(ERROR_DESCRIPTIONS[status], ref("Error"))


def json_request(schema: Schema, *, required: bool = False) -> dict[str, Any]:
    """A JSON request body of `schema`."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def query_param(name: str, description: str, schema: Schema) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def header_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def obj(
    required: Iterable[str], properties: Mapping[str, Schema], *, closed: bool = False
) -> Schema:
    """An object schema; `closed` refuses properties it does not name."""
    schema: Schema = {"type": "object", "required": list(required), "properties": dict(properties)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def nullable(schema: Schema) -> Schema:
    """`schema`, or null."""
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
TIME: Schema = {"type": "string", "description": "ISO-8601, UTC, milliseconds"}
ANY: Schema = {}
EXECUTION_STATUSES = tuple(status.value for status in ExecutionStatus)

COMPONENTS: dict[str, Schema] = {
    "Error": obj(
        ["error"],
        {
            "error": {"type": "string", "description": "What was wrong, naming the field or limit"},
            "problems": {"type": "array", "items": STRING, "description": "Every problem found"},
            "field": {"type": "string", "description": "The field at fault"},
        },
        closed=True,
    ),
    "NodeError": obj(
        ["type", "message", "node_id"],
        {"type": STRING, "message": STRING, "node_id": nullable(STRING)},
    ),
    "WorkflowSummary": obj(
        ["id", "version", "name", "deployed_at"],
        {"id": STRING, "version": INTEGER, "name": nullable(STRING), "deployed_at": TIME},
    ),
    "ExecutionSummary": obj(
        ["execution_id", "workflow_id", "workflow_version", "status", "started_at", "completed_at"],
        {
            "execution_id": STRING,
            "workflow_id": STRING,
            "workflow_version": INTEGER,
            "status": {"enum": list(EXECUTION_STATUSES)},
            "accepted_at": TIME,
            "started_at": nullable(TIME),
            "completed_at": nullable(TIME),
            "event": nullable(obj(["id", "type", "source"], {})),
            "error": nullable(obj(["type", "message"], {"type": STRING, "message": STRING})),
        },
    ),
    "Execution": obj(
        [
            "execution_id",
            "workflow_id",
            "workflow_version",
            "status",
            "input",
            "output",
            "error",
            "started_at",
            "completed_at",
            "progress",
            "paused",
            "held",
            "nodes",
        ],
        {
            "execution_id": STRING,
            "workflow_id": STRING,
            "workflow_version": INTEGER,
            "status": {"enum": list(EXECUTION_STATUSES)},
            "input": ANY,
            "output": ANY,
            "error": nullable(ref("NodeError")),
            "accepted_at": TIME,
            "started_at": nullable(TIME),
            "completed_at": nullable(TIME),
            "progress": obj(
                ["total_nodes", "completed_nodes"],
                {"total_nodes": nullable(INTEGER), "completed_nodes": INTEGER},
            ),
            "cost": obj(
                ["money", "tokens", "http_calls", "run_ms", "attempts", "retries"],
                {
                    "money": {"type": "number"},
                    "tokens": {"type": "object"},
                    "http_calls": INTEGER,
                    "run_ms": {"type": "object"},
                    "attempts": INTEGER,
                    "retries": INTEGER,
                },
            ),
            "paused": {"type": "boolean"},
            "held": INTEGER,
            "held_transitions": {
                "type": "array",
                "items": obj(["kind", "id"], {"kind": STRING, "id": STRING}),
            },
            "started_by": nullable(obj(["kind"], {"kind": STRING})),
            "trace_id": nullable(STRING),
            "traceparent": nullable(STRING),
            "parent": nullable(
                obj(
                    ["execution_id", "workflow_id", "node_id"],
                    {"execution_id": STRING, "workflow_id": STRING, "node_id": STRING},
                )
            ),
            "children": {"type": "object"},
            "control": {
                "type": "array",
                "items": obj(["action", "by", "at"], {"action": STRING, "by": STRING, "at": TIME}),
            },
            "nodes": {
                "type": "array",
                "items": obj(
                    ["node_id", "status", "attempt"],
                    {
                        "node_id": STRING,
                        "status": STRING,
                        "attempt": INTEGER,
                        "started_at": nullable(TIME),
                        "completed_at": nullable(TIME),
                        "duration_ms": nullable(INTEGER),
                        "input": {
                            **ANY,
                            "description": "What the node run took in (a control node's: its"
                            " params, rendered)",
                        },
                        "output": ANY,
                        "error": nullable(ref("NodeError")),
                        "errors": {"type": "array", "items": ref("NodeError")},
                        "items": nullable(
                            obj(
                                ["total", "done", "running", "failed"],
                                {
                                    "total": INTEGER,
                                    "done": INTEGER,
                                    "running": INTEGER,
                                    "failed": INTEGER,
                                },
                            )
                        ),
                    },
                ),
            },
            "joins": {
                "type": "array",
                "items": obj(
                    ["node_id", "arrived", "dead", "fired"],
                    {
                        "node_id": STRING,
                        "arrived": INTEGER,
                        "dead": INTEGER,
                        "fired": {"type": "boolean"},
                    },
                ),
            },
        },
    ),
    "Approval": obj(
        ["execution_id", "node_id", "workflow_id", "workflow_version", "choices", "requested_at"],
        {
            "execution_id": STRING,
            "node_id": STRING,
            "workflow_id": STRING,
            "workflow_version": INTEGER,
            "message": nullable(STRING),
            "choices": {"type": "array", "items": STRING},
            "department": nullable(STRING),
            "timeout_at": nullable(STRING),
            "requested_at": TIME,
        },
    ),
    "DeadLetter": obj(
        ["id", "kind", "at", "redriven_at"],
        {
            "id": STRING,
            "kind": {"enum": ["node", "record"]},
            "at": TIME,
            "redriven_at": nullable(TIME),
        },
    ),
    "Deployed": obj(
        ["id", "version"],
        {
            "id": STRING,
            "version": INTEGER,
            "warnings": {
                "type": "array",
                "items": STRING,
                "description": "Task handlers no worker knows, each with the nearest one;"
                " `dept.*` names and secrets the workflow's department does not give it",
            },
        },
        closed=True,
    ),
    "Started": obj(
        ["workflow_id", "execution_id"], {"workflow_id": STRING, "execution_id": STRING}
    ),
}
