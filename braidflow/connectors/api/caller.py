"""Who a request acts for. Handlers read the caller only through `principal_of`."""

from __future__ import annotations

from aiohttp import web

from braidflow.access import DEFAULT_TENANT, Principal, Role

# With authentication off (only allowed on 127.0.0.1), every request acts as this owner.
UNAUTHENTICATED = Principal("anonymous", DEFAULT_TENANT, {None: Role.OWNER})
_PRINCIPAL = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal:
    """The principal the authentication middleware found for `request`."""
    found = request.get(_PRINCIPAL)
    return UNAUTHENTICATED if found is None else found


def act_as(request: web.Request, principal: Principal) -> None:
    """Record `principal` as who `request` acts for (the authentication middleware's job)."""
    request[_PRINCIPAL] = principal
