"""Who acts, for which tenant, with which role: the words every credential is turned into.

An API key and an identity provider's token both become a `Principal`; what a request may
do is decided from it alone (`Principal.may`). Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_TENANT = "default"
_TENANT = re.compile(r"[a-z][a-z0-9-]{0,39}")


def tenant_problem(name: object) -> str | None:
    """Why `name` cannot be a tenant's name, or None when it can.

    Tenant names end up in topic names and ids, so they are kept to lowercase letters,
    digits and hyphens, starting with a letter, at most 40 characters.
    """
    if not isinstance(name, str) or not _TENANT.fullmatch(name):
        return (
            f"tenant {name!r}: use 1 to 40 lowercase letters, digits or hyphens,"
            " starting with a letter"
        )
    return None


class Role(StrEnum):
    """What a principal may do; each role may do everything the ones below it may."""

    VIEWER = "viewer"  # read
    OPERATOR = "operator"  # start, cancel, pause, resume, decide approvals, redrive, publish
    EDITOR = "editor"  # deploy, roll back, delete workflows
    OWNER = "owner"  # everything: keys, departments

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def covers(self, needed: Role) -> bool:
        """Whether this role may do what `needed` may."""
        return self.rank >= needed.rank


_RANKS = {role: rank for rank, role in enumerate(Role)}


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a key's or a token's subject, in one tenant.

    `roles`: department name to role; the key None is the role in every department of
    the tenant (and in workflows of no department).
    """

    name: str
    tenant: str = DEFAULT_TENANT
    roles: Mapping[str | None, Role] = field(default_factory=dict)

    def role_in(self, department: str | None) -> Role | None:
        """The highest role this principal holds for `department`'s objects."""
        keys = (None,) if department is None else (None, department)
        held = [role for key in keys if (role := self.roles.get(key)) is not None]
        return max(held, key=lambda role: role.rank, default=None)

    def may(self, needed: Role, tenant: str, department: str | None = None) -> bool:
        """Whether this principal may do what `needed` may, on an object of `tenant` and
        `department` (None: an object of no department, or the tenant as a whole)."""
        if tenant != self.tenant:
            return False
        role = self.role_in(department)
        return role is not None and role.covers(needed)
