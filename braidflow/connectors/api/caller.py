"""Who a request acts for. Handlers read the caller only through `principal_of`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

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


# The caller's Authorization header, while its request is handled: a read forwarded to the
# worker that holds an execution acts for the same caller there.
_CREDENTIAL: ContextVar[str | None] = ContextVar("credential", default=None)


@contextmanager
def carry_credential(header: str | None) -> Iterator[None]:
    """Make `header` the credential requests forwarded for this one carry."""
    token = _CREDENTIAL.set(header)
    try:
        yield
    finally:
        _CREDENTIAL.reset(token)


def forwarded_credential() -> dict[str, str]:
    """The Authorization header a forwarded request carries (none: {})."""
    header = _CREDENTIAL.get()
    return {} if header is None else {"Authorization": header}
