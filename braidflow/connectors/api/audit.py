"""The audit log: every change made through the API is recorded, and listed here.

`audit_trail`, one middleware, records every operation that answers 2xx to a method other
than GET (unless its declaration opts out, `Resource.operation(audit=None)`), so an
operation added anywhere is audited with no code of its own. The record (see
braidflow/schemas/audit.py) names the operation id as the action, the path ids as the
target (each named after the path segment before it: `/executions/{id}` -> `execution`),
the principal and tenant of `principal_of`, the time, and what the operation's `Audited`
declaration picks from the body and the answer.

Written before the answer, and acknowledged: an answered change always has its record. The
change itself is stored by then; if its record cannot be written the answer is 503 naming
it, and the change stays made. A change sent but not seen applied in time (a 503
`Unconfirmed`: a decision not applied within 5 s, a deploy not read back) is recorded too,
marked `unconfirmed`: it may be made, and its retry then refused (a second decision: 409).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import require_tenant_wide
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.bodies import TIME_QUERY, limit_query, parsed_json, time_query
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.errors import Unavailable, Unconfirmed
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    TIME,
    Handler,
    Operation,
    Resource,
    json_reply,
    nullable,
    obj,
    query_param,
)
from braidflow.schemas.audit import GIVEN, AuditRecord, audit_record

log = logging.getLogger(__name__)

audit = Resource("audit", "Who changed or decided what, and when")
OPERATIONS = web.AppKey("operations", dict)
"""The application's operations by operation id (its routes' names)."""

AUDIT_RECORD = obj(
    ["id", "at", "action", "principal", "tenant", "target", "detail", "source"],
    {
        "id": STRING,
        "at": TIME,
        "action": {**STRING, "description": "The operation id: deploy, start, cancel, decide..."},
        "principal": STRING,
        "tenant": STRING,
        "target": {
            "type": "object",
            "additionalProperties": STRING,
            "description": "The ids it was done to: workflow, execution, approval...",
        },
        "detail": {
            "type": "object",
            "additionalProperties": nullable({"type": ["string", "integer", "boolean"]}),
            "description": "A few short values: a decision's choice, a cancel's reason",
        },
        "source": STRING,
    },
)


@audit.operation(
    "GET",
    "/audit",
    summary="Audit records, newest first: every change and decision, who made it and when",
    parameters=[
        query_param("principal", "Only those of this principal", STRING),
        query_param("target", "Only those about this id (a workflow, an execution...)", STRING),
        query_param("from", "Only those at this time or later", TIME_QUERY),
        query_param("to", "Only those at this time or earlier", TIME_QUERY),
        query_param("limit", "At most this many", {**INTEGER, "minimum": 1, "maximum": 1000}),
    ],
    responses={
        200: json_reply(
            "The records",
            obj(["records"], {"records": {"type": "array", "items": AUDIT_RECORD}}),
        )
    },
    refusals=[400],
    role=Role.OWNER,
)
async def list_audit(request: web.Request) -> web.Response:
    """Owners only (the log names every principal's changes, in every department). Only the
    records of the caller's tenant. From this worker's read model of the audit
    topic: a record written a moment ago by another worker may take a moment to be listed."""
    require_tenant_wide(request, Role.OWNER, "reading the audit log")
    query = request.query
    limit = limit_query(query, 100)
    records = await backend_of(request).audit_log(
        principal_of(request).tenant,
        query.get("principal"),
        query.get("target"),
        time_query(query, "from"),
        time_query(query, "to"),
        limit,
    )
    return web.json_response({"records": records})


def operations_by_id(resources: Iterable[Resource]) -> dict[str, Operation]:
    """Every operation of `resources` by its operation id, for `audit_trail`."""
    return {op.spec["operationId"]: op for r in resources for op in r.operations}


def target_of(path: str, ids: Mapping[str, str]) -> dict[str, str]:
    """The path ids of a request to `path` (a template), each named after the segment
    before it, singular: `/dead-letters/{id}/redrive` -> `{"dead_letter": ...}`."""
    target: dict[str, str] = {}
    before = ""
    for segment in path.strip("/").split("/"):
        found = re.fullmatch(r"\{(\w+)\}", segment)
        if found is None:
            before = segment
            continue
        name = before.removesuffix("s").replace("-", "_") or found.group(1)
        if found.group(1) in ids:
            target[name] = ids[found.group(1)]
        before = ""
    return target


@web.middleware
async def audit_trail(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record a successful change (2xx, not a GET) before answering; 503 if the record
    cannot be written. A change sent but not seen applied (`Unconfirmed`) is recorded too,
    with `unconfirmed: true`: it may be made, and a retry may then be refused."""
    name = request.match_info.route.name
    op = request.app[OPERATIONS].get(name) if name else None
    if op is None or op.audit is None:
        return await handler(request)
    try:
        response = await handler(request)
    except Unconfirmed:
        await _write(request, op, await _record_of(request, op, None))
        raise
    if 200 <= response.status < 300:
        await _write(request, op, await _record_of(request, op, response))
    return response


async def _write(request: web.Request, op: Operation, record: AuditRecord) -> None:
    try:
        await backend_of(request).write_audit(record)
    except Exception as exc:
        log.exception("the audit record of %s %s was not written", request.method, request.path)
        raise Unavailable(
            f"audit: the {op.spec['operationId']} was made, but its audit record could not be"
            f" written ({type(exc).__name__}: {exc}); the change stands"
        ) from None


async def _record_of(
    request: web.Request, op: Operation, response: web.StreamResponse | None
) -> AuditRecord:
    """The record of `op` done for `request`; `response` None when it is unconfirmed."""
    assert op.audit is not None
    principal = principal_of(request)
    target: dict[str, Any] = target_of(op.path, request.match_info)
    if op.audit.answer and isinstance(response, web.Response):
        answer = _object(response.body)
        target.update({name: answer[key] for key, name in op.audit.answer.items() if key in answer})
    detail: dict[str, Any] = {}
    if op.audit.detail or op.audit.given:
        raw = await request.read()
        body = await parsed_json(raw) if raw.strip() else {}
        if isinstance(body, dict):
            detail = {key: body[key] for key in op.audit.detail if key in body}
            detail.update({key: GIVEN for key in op.audit.given if key in body})
    if response is None:
        detail["unconfirmed"] = True
    at = backend_of(request).now_ms()
    return audit_record(
        op.spec["operationId"], principal.name, principal.tenant, at, target, detail
    )


def _object(body: Any) -> Mapping[str, Any]:
    """The JSON object of an answer's body, else {}."""
    if not isinstance(body, bytes):
        return {}
    try:
        found = json.loads(body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
