"""API keys: create one (shown once), list them, revoke one. Owners only."""

from __future__ import annotations

import time

from aiohttp import web

from braidflow.access import Role, tenant_problem
from braidflow.api_keys import key_name_problem
from braidflow.connectors.api.authentication import AUTHENTICATION, KeyStore, require_tenant_wide
from braidflow.connectors.api.bodies import object_body, string_field
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.errors import BadRequest, Conflict, NotFound
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    Audited,
    Resource,
    json_reply,
    json_request,
    nullable,
    obj,
    path_param,
)

keys = Resource("keys", "API keys: who may call the API, with which role")
ROLE_NAMES = [role.value for role in Role]
KEY = obj(
    ["id", "tenant", "role", "department", "name", "created_at", "created_by", "revoked_at"],
    {
        "id": {**STRING, "description": "The public part of the key: list and revoke by it"},
        "tenant": STRING,
        "role": {"enum": ROLE_NAMES},
        "department": nullable(STRING),
        "name": STRING,
        "created_at": INTEGER,
        "created_by": STRING,
        "revoked_at": nullable(INTEGER),
        "revoked_by": nullable(STRING),
    },
)


def _store(request: web.Request) -> KeyStore:
    """The worker's keys, for an owner of the whole tenant only (a department's owner
    owns its department's workflows, not who may call the API)."""
    require_tenant_wide(request, Role.OWNER, "managing keys")
    store = request.app[AUTHENTICATION].keys
    if store is None:
        raise Conflict("authentication is off on this worker: it keeps no keys")
    return store


@keys.operation(
    "POST",
    "/keys",
    summary="Create an API key; the answer is the only place the key is ever shown",
    body=json_request(
        obj(
            ["role"],
            {
                "role": {"enum": ROLE_NAMES},
                "tenant": {**STRING, "description": "Default: the caller's tenant"},
                "department": {**STRING, "minLength": 1, "description": "Only this department"},
                "name": {**STRING, "description": "Who or what uses the key"},
            },
            closed=True,
        ),
        required=True,
    ),
    responses={
        201: json_reply(
            "Created: `key` is the secret, not stored anywhere",
            {"allOf": [KEY, obj(["key"], {"key": STRING})]},
        )
    },
    refusals=[409],
    # The key's id and what it may do; never the key (`answer` takes only the fields named).
    audit=Audited(detail=("role", "department", "name"), answer={"id": "key"}),
    role=Role.OWNER,
)
async def create_key(request: web.Request) -> web.Response:
    """An owner makes keys of its own tenant only."""
    # Who may is settled before what was asked: a department's owner gets 403, not a 400.
    store = _store(request)
    body = await object_body(request, {"role", "tenant", "department", "name"})
    caller = principal_of(request)
    role_name = string_field(body, "role", required=True)
    if role_name not in ROLE_NAMES:
        raise BadRequest(f"role: one of {', '.join(ROLE_NAMES)}", field="role")
    for name in ("tenant", "department", "name"):
        if name in body and not isinstance(body[name], str):
            raise BadRequest(f"{name}: must be a string", field=name)
    if body.get("department") == "":
        raise BadRequest("department: leave it out for every department", field="department")
    tenant = string_field(body, "tenant") or caller.tenant
    problem = tenant_problem(tenant)
    if problem is not None:
        raise BadRequest(problem, field="tenant")
    if tenant != caller.tenant:
        raise NotFound(f"no tenant {tenant!r}")
    department = string_field(body, "department") or None
    name = string_field(body, "name") or ""
    problem = key_name_problem(name)
    if problem is not None:
        raise BadRequest(problem, field="name")
    key, record = await store.create(
        tenant, Role(role_name), department, name, int(time.time() * 1000), caller.name
    )
    return web.json_response({**record.listing(), "key": key}, status=201)


@keys.operation(
    "GET",
    "/keys",
    summary="The keys of the caller's tenant, revoked ones too (never a key's secret)",
    responses={
        200: json_reply("The keys", obj(["keys"], {"keys": {"type": "array", "items": KEY}}))
    },
    refusals=[409],
    role=Role.OWNER,
)
async def list_keys(request: web.Request) -> web.Response:
    found = _store(request).keys(principal_of(request).tenant)
    return web.json_response({"keys": [k.listing() for k in found]})


@keys.operation(
    "DELETE",
    "/keys/{id}",
    summary="Revoke a key on every worker; revoking it again changes nothing",
    parameters=[path_param("id", "The key's id (the part after bfk_, before the secret)")],
    responses={200: json_reply("Revoked", KEY)},
    refusals=[404, 409],
    role=Role.OWNER,
)
async def revoke_key(request: web.Request) -> web.Response:
    store = _store(request)
    caller = principal_of(request)
    key_id = request.match_info["id"]
    found = store.get(key_id)
    if found is None or found.tenant != caller.tenant:
        raise NotFound(f"no key {key_id!r}")
    revoked = await store.revoke(key_id, int(time.time() * 1000), caller.name)
    assert revoked is not None
    return web.json_response(revoked.listing())
