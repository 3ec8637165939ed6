"""The claims of an identity provider's token, read as a `Principal`. Pure: plain data in.

- `sub`: the principal's name;
- the tenant claim (`tenant` unless configured): a tenant name; absent, the default tenant,
  so a single-tenant install needs nothing in its tokens;
- the roles claim (`roles` unless configured), required: a list such as
  `["editor", "support:operator"]`, each a role in the whole tenant or `department:role`.
  Of several roles for one department the highest counts; an empty list is a principal
  who may do nothing (a 403, not a 401).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from braidflow.access import DEFAULT_TENANT, Principal, Role, tenant_problem

ROLE_NAMES = ", ".join(role.value for role in Role)


@dataclass(frozen=True)
class ClaimNames:
    """Which claims of a token hold the tenant and the roles."""

    tenant: str = "tenant"
    roles: str = "roles"


DEFAULT_CLAIMS = ClaimNames()


class ClaimError(ValueError):
    """A claim is missing or malformed; the message names the claim."""


def principal_from_claims(claims: Mapping[str, Any], names: ClaimNames) -> Principal:
    """The principal a verified token's claims describe; ClaimError naming the claim at fault."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise ClaimError("claim 'sub' must be a non-empty string (the principal's name)")
    tenant = claims.get(names.tenant, DEFAULT_TENANT)
    problem = tenant_problem(tenant)
    if problem is not None:
        raise ClaimError(f"claim {names.tenant!r}: {problem}")
    if names.roles not in claims:
        raise ClaimError(f"claim {names.roles!r} missing")
    return Principal(subject, tenant, role_grants(claims[names.roles], names.roles))


def role_grants(values: object, claim: str) -> dict[str | None, Role]:
    """Department (None: the whole tenant) to role, from a roles claim's value."""
    if not isinstance(values, list):
        raise ClaimError(f'claim {claim!r} must be a list such as ["editor", "support:operator"]')
    grants: dict[str | None, Role] = {}
    for value in values:
        department, role = _grant(value, claim)
        held = grants.get(department)
        if held is None or role.covers(held):
            grants[department] = role
    return grants


def _grant(value: object, claim: str) -> tuple[str | None, Role]:
    if not isinstance(value, str):
        raise ClaimError(f"claim {claim!r}: {value!r} is not a string")
    department, colon, name = value.rpartition(":")
    if colon and not department:
        raise ClaimError(f"claim {claim!r}: {value!r} names no department before ':'")
    try:
        role = Role(name)
    except ValueError:
        raise ClaimError(f"claim {claim!r}: {name!r} is not a role (one of {ROLE_NAMES})") from None
    return (department if colon else None), role
