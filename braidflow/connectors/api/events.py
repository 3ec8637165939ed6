"""Events: publish a CloudEvent, receive a webhook, backfill a workflow from past events."""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from aiohttp import web

from braidflow.access import DEFAULT_TENANT, Role, tenant_problem
from braidflow.connectors.api.authentication import department_of, require, require_publisher
from braidflow.connectors.api.backend import BACKEND, backend_of
from braidflow.connectors.api.bodies import moment, object_body, off_loop, parsed_json
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.errors import BadRequest, NotFound, Unauthorized
from braidflow.connectors.api.openapi import (
    ANY,
    INTEGER,
    STRING,
    TIME,
    Audited,
    Resource,
    header_param,
    json_reply,
    json_request,
    nullable,
    obj,
    path_param,
    ref,
)
from braidflow.connectors.api.trace_headers import (
    TRACEPARENT_PARAM,
    trace_extension,
    with_request_trace,
)
from braidflow.schemas.cloudevents import from_structured, new_event
from braidflow.tenants import tenant_variable

SIGNATURE_HEADER = "X-Braidflow-Signature"

events = Resource("events", "Domain events, webhooks and backfills")


WEBHOOK_SECRET_ENV = "BRAIDFLOW_WEBHOOK_SECRET"
TENANT_WEBHOOK_SECRET_PREFIX = "BRAIDFLOW_TENANT_WEBHOOK_SECRET_"
"""Another tenant's webhook secrets: a prefix of their own, since every
`BRAIDFLOW_WEBHOOK_SECRET_<X>` is the default tenant's webhook X."""


def webhook_secret(name: str, tenant: str = DEFAULT_TENANT) -> bytes | None:
    """The HMAC secret of webhook `name`: `BRAIDFLOW_WEBHOOK_SECRET_<NAME>`, else the shared one.

    Another tenant's webhook has only its own, `BRAIDFLOW_TENANT_WEBHOOK_SECRET_<TENANT>__<NAME>`
    so the default tenant's secrets never open another tenant's hooks. A hook whose spelling
    would be ambiguous (`braidflow.tenants.tenant_variable`) is refused with `Unauthorized`.
    """
    spelt = re.sub(r"[^A-Z0-9]", "_", name.upper())
    if tenant != DEFAULT_TENANT:
        variable = tenant_variable(TENANT_WEBHOOK_SECRET_PREFIX, tenant, spelt)
        if variable is None:
            # Refused, not left unsigned: a secret set for it would be read as another's.
            raise Unauthorized(
                f"webhook {name!r} of tenant {tenant!r} has no unambiguous secret variable:"
                " use a hook name that does not start with '_' or hold '__' when spelt",
                field="name",
            )
        secret = os.environ.get(variable)
    else:
        own = f"{WEBHOOK_SECRET_ENV}_{spelt}"
        secret = os.environ.get(own) or os.environ.get(WEBHOOK_SECRET_ENV)
    return secret.encode() if secret else None


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of body>` (the bare hex is accepted too)."""
    if not header:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.strip().removeprefix("sha256="), expected)


TEXT = {**STRING, "minLength": 1}
CLOUD_EVENT = {
    **obj(
        ["specversion", "id", "source", "type"],
        {
            "specversion": {"const": "1.0"},
            "id": TEXT,
            "source": TEXT,
            "type": {
                **TEXT,
                "pattern": "^[a-zA-Z0-9_-]+(\\..*)?$",
                "description": "Its first segment names the topic: `ticket.resolved` goes to"
                " `events.ticket`",
            },
            # A null attribute counts as absent.
            "subject": nullable(TEXT),
            "time": nullable({**STRING, "format": "date-time"}),
            "datacontenttype": nullable(TEXT),
            "dataschema": nullable(TEXT),
            "data": ANY,
            "data_base64": nullable(STRING),
        },
    ),
    # Any other member is an extension attribute: a lowercase name, a scalar value.
    "propertyNames": {"pattern": "^([a-z0-9]+|data_base64)$"},
    "additionalProperties": {"type": ["string", "integer", "boolean", "null"]},
    # Not data and data_base64 both.
    "not": {
        "required": ["data", "data_base64"],
        "properties": {"data": {"not": {"type": "null"}}, "data_base64": {"type": "string"}},
    },
    "description": "A CloudEvent 1.0 in the structured JSON format",
}


@events.operation(
    "POST",
    "/events",
    summary="Publish a domain event (a CloudEvent) to its events topic",
    body={
        "required": True,
        "content": {
            "application/cloudevents+json": {"schema": CLOUD_EVENT},
            "application/json": {"schema": CLOUD_EVENT},
        },
    },
    responses={
        202: json_reply(
            "Sent to its topic",
            obj(["id", "type", "topic"], {"id": STRING, "type": STRING, "topic": STRING}),
        )
    },
    # The event's id and type, never its data.
    audit=Audited(answer={"id": "event", "type": "event_type"}),
    role=Role.OPERATOR,
)
async def publish(request: web.Request) -> web.Response:
    """400 names the missing or bad attribute in `field`; 413 when the event, or a start it
    triggers, could not fit a record."""
    body = await request.read()
    event = with_request_trace(await off_loop(len(body), from_structured, body), request)
    tenant = principal_of(request).tenant
    if event.extensions.get("tenant", tenant) != tenant:
        # The router would only dead-letter it: an event's tenant is its topic's.
        raise BadRequest(
            f"tenant: the event names {event.extensions['tenant']!r}, but it is published"
            f" for the caller's tenant {tenant!r}",
            field="tenant",
        )
    department = event.extensions.get("department")
    require_publisher(request, department if isinstance(department, str) else None)
    # The topic is named after the type; a type no topic can carry is the sender's error.
    topic = await backend_of(request).publish_event(event)
    return web.json_response({"id": event.id, "type": event.type, "topic": topic}, status=202)


# What every webhook route takes and answers, whichever tenant's it is.
_WEBHOOK_HEADERS = (
    header_param(
        SIGNATURE_HEADER,
        "`sha256=<hex HMAC-SHA256 of the body>`, required when the webhook has a secret",
    ),
    header_param("Idempotency-Key", "The event's id: a retry with it starts nothing new"),
    header_param("X-Request-Id", "The event's id when there is no Idempotency-Key"),
    TRACEPARENT_PARAM,
)
_WEBHOOK_BODY = json_request({**ANY, "description": "Any JSON: the event's data"})
_WEBHOOK_REPLIES = {
    202: json_reply(
        "The executions it started",
        obj(
            ["event_id", "executions"],
            {"event_id": STRING, "executions": {"type": "array", "items": ref("Started")}},
        ),
    )
}


@events.operation(
    "POST",
    "/hooks/{name}",
    summary="A webhook: start every workflow whose webhook trigger has this name",
    parameters=[
        path_param("name", "The webhook trigger's name"),
        *_WEBHOOK_HEADERS,
    ],
    body=_WEBHOOK_BODY,
    responses=_WEBHOOK_REPLIES,
    refusals=[401, 404],
    # Not audited: an outside system's event, signed with the hook's secret rather than done
    # by a principal, as many as its sender sends; each execution it starts is in the
    # lifecycle topic with what started it (`started_by`).
    audit=None,
    role=None,
)
async def webhook(request: web.Request) -> web.Response:
    return await _called(request, DEFAULT_TENANT, "/hooks")


@events.operation(
    "POST",
    "/tenants/{tenant}/hooks/{name}",
    summary="A webhook of a tenant other than the default: start its workflows with this trigger",
    parameters=[
        path_param("tenant", "The tenant (the default tenant's webhooks are /hooks/{name})"),
        path_param("name", "The webhook trigger's name"),
        *_WEBHOOK_HEADERS,
    ],
    body=_WEBHOOK_BODY,
    responses=_WEBHOOK_REPLIES,
    refusals=[401, 404],
    # As /hooks/{name}: signed by its sender, not done by a principal.
    audit=None,
    role=None,
)
async def tenant_webhook(request: web.Request) -> web.Response:
    """Starts only workflows of `tenant`; `/tenants/default/...` is not found (the default
    tenant's hooks have one address)."""
    tenant = request.match_info["tenant"]
    if tenant == DEFAULT_TENANT or tenant_problem(tenant) is not None:
        raise NotFound(f"no tenant webhooks at /tenants/{tenant}/hooks")
    return await _called(request, tenant, f"/tenants/{tenant}/hooks")


async def _called(request: web.Request, tenant: str, path: str) -> web.Response:
    """Start every workflow of `tenant` whose webhook trigger has the name called."""
    backend = request.app[BACKEND].for_tenant(tenant)
    name = request.match_info["name"]
    workflows = backend.webhook_workflows(name)
    if not workflows:
        raise NotFound(f"no workflow has a webhook trigger named {name!r}")
    body = await request.read()
    secret = webhook_secret(name, tenant)
    if secret is not None and not signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER)):
        raise Unauthorized(
            f"{SIGNATURE_HEADER}: missing or not the HMAC-SHA256 of the body",
            field=SIGNATURE_HEADER,
        )
    data = await parsed_json(body) if body.strip() else None
    # An empty header names no id.
    event_id = request.headers.get("Idempotency-Key") or request.headers.get("X-Request-Id") or None
    event = new_event(
        f"braidflow.webhook.{name}",
        data,
        source=f"{path}/{name}",
        id=event_id,
        extensions=trace_extension(request),
    )
    started = await backend.start_for_event(workflows, event)
    return web.json_response({"event_id": event.id, "executions": started}, status=202)


@events.operation(
    "POST",
    "/workflows/{id}/backfill",
    summary="Start a workflow for the past events its triggers match, in [from, to]",
    parameters=[path_param("id", "The workflow's id")],
    body=json_request(
        obj(
            ["from"],
            {
                "from": {**STRING, "format": "date-time", "description": "With an offset or Z"},
                "to": {
                    **STRING,
                    "format": "date-time",
                    "description": "With an offset or Z; default now",
                },
            },
            closed=True,
        ),
        required=True,
    ),
    responses={
        200: json_reply(
            "What it read and started (a second run starts nothing twice)",
            obj(
                [
                    "workflow_id",
                    "from",
                    "to",
                    "read",
                    "matched",
                    "started",
                    "already_started",
                    "refused",
                ],
                {
                    "workflow_id": STRING,
                    "from": TIME,
                    "to": TIME,
                    "read": INTEGER,
                    "matched": INTEGER,
                    "started": INTEGER,
                    "already_started": INTEGER,
                    "refused": INTEGER,
                },
            ),
        )
    },
    refusals=[404, 503],
    audit=Audited(detail=("from", "to")),
    role=Role.OPERATOR,
)
async def backfill(request: web.Request) -> web.Response:
    """422 for a workflow with no event triggers, a range over 31 days or over 100,000
    records."""
    body = await object_body(request, {"from", "to"})
    from_ms = moment(body, "from")
    to_ms = moment(body, "to") if "to" in body else None
    backend = backend_of(request)
    workflow_id = request.match_info["id"]
    latest = backend.latest(workflow_id)
    if latest is None:
        raise NotFound(f"no workflow {workflow_id!r}")
    require(request, Role.OPERATOR, department_of(latest), f"workflow {workflow_id!r}")
    report = await backend.backfill(workflow_id, from_ms, to_ms)
    return web.json_response(report)
