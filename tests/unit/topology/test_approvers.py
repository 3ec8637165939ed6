"""Approvers that read as a role but are taken as a principal's name
(braidflow/topology/approvers.py), and who may decide."""

from __future__ import annotations

import pytest

from braidflow.access import Role
from braidflow.topology import load_workflow
from braidflow.topology.approvers import may_decide, role_like_approvers, role_meant

SIGN_OFF = """
id: sign-off
nodes:
  - {id: ask, type: approval, params: {approvers: [%s]}}
  - {id: again, type: approval, params: {approvers: [Editors]}}
  - {id: done, type: end}
edges:
  - {from: ask, to: again}
  - {from: again, to: done}
"""


@pytest.mark.parametrize(
    ("approver", "meant"),
    [
        ("admin", Role.OWNER),
        ("Admins", Role.OWNER),
        ("administrator", Role.OWNER),
        ("editors", Role.EDITOR),
        ("Operator", Role.OPERATOR),
        ("role:viewer", Role.VIEWER),
        ("@owner", Role.OWNER),
        ("approvers", Role.OPERATOR),
    ],
)
def test_a_role_written_another_way_is_the_role_it_means(approver: str, meant: Role) -> None:
    assert role_meant(approver) == meant
    # As written it names a principal, who alone may decide: not the role's holders.
    assert not may_decide([approver], "someone", meant)


@pytest.mark.parametrize("approver", ["editor", "owner", "ana", "owen", "ada@example.test"])
def test_role_names_and_peoples_names_mean_no_other_role(approver: str) -> None:
    assert role_meant(approver) is None


def test_each_approval_naming_a_role_another_way_is_warned_of_by_node() -> None:
    warnings = role_like_approvers(load_workflow(SIGN_OFF % "admin, ana, editor"))
    assert [str(w) for w in warnings] == [
        "node 'ask': params.approvers: 'admin' is not a role, so only a principal named"
        " 'admin' may decide; did you mean the role 'owner'? (roles: viewer, operator,"
        " editor, owner, each covering those before it)",
        "node 'again': params.approvers: 'Editors' is not a role, so only a principal named"
        " 'Editors' may decide; did you mean the role 'editor'? (roles: viewer, operator,"
        " editor, owner, each covering those before it)",
    ]
    assert role_like_approvers(load_workflow(SIGN_OFF.replace("Editors", "ana") % "editor")) == []
