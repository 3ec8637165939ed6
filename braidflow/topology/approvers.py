"""Who may decide an approval: its `approvers`, role names or principal names.

An approval node with no `approvers` may be decided by anyone with the operator role on
its execution. With `approvers`, only a principal named there, or one whose role (in the
execution's department) covers a role named there, may. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from braidflow.access import Role

ROLE_NAMES = frozenset(role.value for role in Role)


def may_decide(approvers: Sequence[str] | None, name: str, role: Role | None) -> bool:
    """Whether the principal `name`, holding `role` where the approval is, may decide it."""
    if not approvers:
        return True
    if name in approvers:
        return True
    named_roles = [Role(a) for a in approvers if a in ROLE_NAMES]
    return role is not None and any(role.covers(needed) for needed in named_roles)
