"""Who a request is, and whether its role may do what it asks.

`authenticate` (a middleware) turns `Authorization: Bearer X` into a `Principal`: X is one
of the cluster's API keys (`bfk_...`), else it goes to the token verifier the runtime
plugs in (`TokenVerifier`; none: a 401 naming why). Then the operation's declared role
(`Resource.operation(..., role=...)`) must be one the principal holds somewhere in its
tenant, else 403. A department-scoped principal holds its role only in its department:
handlers check the object they find with `require`, which answers 404 for what the
principal may not even read (never saying it exists) and 403 for what it may read but
not change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from braidflow.access import Principal, Role
from braidflow.api_keys import KeyRecord, looks_like_key
from braidflow.connectors.api.backend import Backend, Deployed
from braidflow.connectors.api.caller import act_as, carry_credential, principal_of
from braidflow.connectors.api.errors import BadRequest, Forbidden, NotFound, Unauthorized

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenVerifier(Protocol):
    """Turns an identity provider's bearer token into a principal (branch `tokens`)."""

    async def principal(self, token: str) -> Principal:
        """Who `token` is; raises `Unauthorized` naming why when it is not valid."""
        ...


class KeyStore(Protocol):
    """The cluster's API keys, as the middleware and the keys resource need them."""

    def principal(self, key: str) -> Principal | None: ...

    async def principal_now(self, key: str) -> Principal | None: ...

    def keys(self, tenant: str | None = None) -> list[KeyRecord]: ...

    def get(self, key_id: str) -> KeyRecord | None: ...

    async def create(
        self,
        tenant: str,
        role: Role,
        department: str | None,
        name: str,
        now_ms: int,
        created_by: str,
    ) -> tuple[str, KeyRecord]: ...

    async def revoke(self, key_id: str, now_ms: int, by: str) -> KeyRecord | None: ...


@dataclass(frozen=True)
class Authentication:
    """How a worker's API knows its callers: its keys and, if any, a token verifier.

    `keys` None: authentication is off (only allowed on 127.0.0.1), every request acts
    as an owner of the default tenant.
    """

    keys: KeyStore | None
    tokens: TokenVerifier | None = None


AUTHENTICATION = web.AppKey("authentication", Authentication)
ROLES = web.AppKey("roles", dict)
_BEARER = "bearer "


def off_problem(api_host: str) -> str | None:
    """Why authentication cannot be off for an API listening on `api_host`; None if it can."""
    try:
        loopback = ipaddress.ip_address(api_host).is_loopback
    except ValueError:
        loopback = False
    if loopback and api_host.startswith("127."):
        return None
    return (
        f"--no-auth: authentication can be turned off only when the API listens on"
        f" 127.0.0.1, not {api_host}"
    )


def credential(header: str | None) -> str:
    """The credential of an Authorization header; Unauthorized naming what is wrong."""
    if not header:
        raise Unauthorized(
            "no credential: send Authorization: Bearer KEY (braidflow keys create)",
            field="Authorization",
        )
    if not header.lower().startswith(_BEARER) or not header[len(_BEARER) :].strip():
        raise Unauthorized("Authorization: expected 'Bearer KEY'", field="Authorization")
    return header[len(_BEARER) :].strip()


async def principal_for(auth: Authentication, header: str | None) -> Principal:
    """Who a request with Authorization `header` acts for; Unauthorized if nobody."""
    assert auth.keys is not None
    given = credential(header)
    if looks_like_key(given):
        found = await auth.keys.principal_now(given)
        if found is None:
            raise Unauthorized("unknown or revoked API key", field="Authorization")
        return found
    if auth.tokens is None:
        raise Unauthorized(
            "not an API key of this cluster, and this worker verifies no tokens",
            field="Authorization",
        )
    principal = await auth.tokens.principal(given)
    # A key's name and a token's subject share one namespace (`by`, approvers, the audit
    # log): a subject that is a key's name would act as that key does (api_keys).
    taken = [k.id for k in auth.keys.keys(principal.tenant) if k.name == principal.name]
    if taken:
        raise Unauthorized(
            f"claim 'sub': {principal.name!r} is the name of API key {taken[0]} of tenant"
            f" {principal.tenant}; a token's subject may not be a key's name",
            field="Authorization",
        )
    return principal


def holds_anywhere(principal: Principal, needed: Role) -> bool:
    """Whether `principal` holds `needed` in some department of its tenant (or all)."""
    return any(role.covers(needed) for role in principal.roles.values())


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find who the request is and refuse it (401, 403) before its handler runs."""
    auth = request.app[AUTHENTICATION]
    route = request.match_info.route.name
    roles: Mapping[str | None, Role | None] = request.app[ROLES]
    # An unknown route needs a credential too: its 404 would tell a stranger what exists.
    needed = roles.get(route, Role.VIEWER)
    if needed is None or auth.keys is None:
        return await handler(request)
    header = request.headers.get("Authorization")
    principal = await principal_for(auth, header)
    if not holds_anywhere(principal, needed):
        raise Forbidden(f"{principal.name}: this needs the {needed.value} role")
    act_as(request, principal)
    with carry_credential(header):
        return await handler(request)


def require(request: web.Request, needed: Role, department: str | None, what: str) -> None:
    """Refuse unless the caller may do what `needed` may on `what` of `department`:
    NotFound when it may not read it (as if it did not exist), else Forbidden."""
    principal = principal_of(request)
    # Objects are found through the caller's tenant's backend (`backend_of`): another
    # tenant's never get here, they are not found.
    if principal.may(needed, principal.tenant, department):
        return
    if not principal.may(Role.VIEWER, principal.tenant, department):
        raise NotFound(f"no {what}")
    raise Forbidden(f"{principal.name}: {what} needs the {needed.value} role")


def require_tenant_wide(request: web.Request, needed: Role, what: str) -> None:
    """Refuse (403) unless the caller holds `needed` for its whole tenant: what `what`
    concerns (keys, the audit log) is no department's, and a department's owner who could
    make a tenant-wide key would hold every department."""
    principal = principal_of(request)
    if not principal.may(needed, principal.tenant, None):
        raise Forbidden(
            f"{principal.name}: {what} is for the {needed.value} role of the whole tenant"
        )


def may_read(request: web.Request, department: str | None) -> bool:
    """Whether the caller may read objects of `department` (filters listings)."""
    principal = principal_of(request)
    return principal.may(Role.VIEWER, principal.tenant, department)


def department_of(deployed: Deployed | None) -> str | None:
    """The department a deployed workflow (and its executions, approvals, dead letters)
    belongs to; None for a workflow of no department."""
    return None if deployed is None else deployed.workflow.definition.department


def execution_department(backend: Backend, view: Mapping[str, Any]) -> str | None:
    """The department of the execution `view` shows (that of its workflow's version)."""
    return department_of(backend.get(view["workflow_id"], view["workflow_version"]))


async def readable_execution_summary(
    request: web.Request, backend: Backend, execution_id: str
) -> Mapping[str, Any]:
    """The execution as this worker's execution index lists it, for a caller who may read
    it: NotFound for none, another tenant's, or one of a department the caller may not read."""
    summary = await backend.execution_summary(execution_id)
    if summary is None:
        raise NotFound(f"no execution {execution_id!r}")
    what = f"execution {execution_id!r}"
    require(request, Role.VIEWER, execution_department(backend, summary), what)
    return summary


def require_publisher(request: web.Request, department: str | None) -> None:
    """Refuse (403) an event the caller may not publish: one for `department` (None: for
    every department) needs the operator role there."""
    principal = principal_of(request)
    if not principal.may(Role.OPERATOR, principal.tenant, department):
        where = "every department" if department is None else f"department {department!r}"
        raise Forbidden(f"{principal.name}: an event for {where} needs the operator role there")


# Why a `by` in a body is refused rather than ignored: a client that sends one believes it
# names who acts, and would silently see another name recorded.
BY_REFUSED = "by: who acts is the caller's credential, not a field of the body; leave it out"


def refuse_by(body: Mapping[str, Any]) -> None:
    """BadRequest when a body names who acts (`by`): the credential says who."""
    if "by" in body:
        raise BadRequest(BY_REFUSED, field="by")


def acting_name(request: web.Request) -> str:
    """The name decisions and controls record for the caller."""
    return principal_of(request).name
