"""Who may decide an approval: its `approvers`, role names or principal names.

An approval node with no `approvers` may be decided by anyone with the operator role on
its execution. With `approvers`, only a principal named there, or one whose role (in the
execution's department) covers a role named there, may. Pure.

Roles and principals share the list, written alike, so a role written another way
(`admin`, `Editors`, `role:owner`) silently becomes a principal's name that nobody may hold,
and the approval waits for its timeout. It is warned of, not refused: a key may be named
`admin`, and then the definition means it (`role_like_approvers`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from braidflow.access import Role
from braidflow.topology.loading import Problem
from braidflow.topology.workflow import Workflow

ROLE_NAMES = frozenset(role.value for role in Role)

# Words for a role that are not its name: what an author used to another system writes.
_ROLE_WORDS = {
    "admin": Role.OWNER,
    "administrator": Role.OWNER,
    "superuser": Role.OWNER,
    "root": Role.OWNER,
    "approver": Role.OPERATOR,
    "reader": Role.VIEWER,
    "writer": Role.EDITOR,
}
_ROLE_PREFIXES = ("role:", "roles:", "role/", "roles/", "role-", "@")


def may_decide(approvers: Sequence[str] | None, name: str, role: Role | None) -> bool:
    """Whether the principal `name`, holding `role` where the approval is, may decide it."""
    if not approvers:
        return True
    if name in approvers:
        return True
    named_roles = [Role(a) for a in approvers if a in ROLE_NAMES]
    return role is not None and any(role.covers(needed) for needed in named_roles)


def role_meant(approver: str) -> Role | None:
    """The role an approver that is not a role name most likely means (another case, a
    plural, a `role:` prefix, a word such as `admin`), or None."""
    if approver in ROLE_NAMES:
        return None
    word = approver.strip().lower()
    for prefix in _ROLE_PREFIXES:
        word = word.removeprefix(prefix)
    for form in (word, word.removesuffix("s")):
        if form in ROLE_NAMES:
            return Role(form)
        if form in _ROLE_WORDS:
            return _ROLE_WORDS[form]
    return None


def role_like_approvers(workflow: Workflow) -> list[Problem]:
    """A warning for each approver of `workflow` that reads as a role but is taken as a
    principal's name, naming the node and the role it likely means."""
    roles = ", ".join(role.value for role in Role)
    return [
        Problem(
            f"node '{node_id}'",
            f"params.approvers: {approver!r} is not a role, so only a principal named"
            f" {approver!r} may decide; did you mean the role {meant.value!r}? (roles:"
            f" {roles}, each covering those before it)",
        )
        for node_id, approver in _approvers(workflow)
        if (meant := role_meant(approver)) is not None
    ]


def _approvers(workflow: Workflow) -> Iterator[tuple[str, str]]:
    # An approval is never a foreach's item node: only work kinds are.
    for node in workflow.nodes.values():
        approvers = node.node.params.get("approvers") if node.type == "approval" else None
        for approver in approvers if isinstance(approvers, list) else ():
            if isinstance(approver, str):
                yield node.id, approver
