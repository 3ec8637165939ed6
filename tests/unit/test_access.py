"""Principals, roles and tenant names (braidflow/access.py)."""

from __future__ import annotations

import pytest

from braidflow.access import DEFAULT_TENANT, Principal, Role, tenant_problem


def test_each_role_covers_the_ones_below_it() -> None:
    assert Role.OWNER.covers(Role.EDITOR) and Role.EDITOR.covers(Role.OPERATOR)
    assert Role.OPERATOR.covers(Role.VIEWER) and Role.VIEWER.covers(Role.VIEWER)
    assert not Role.VIEWER.covers(Role.OPERATOR)
    assert not Role.EDITOR.covers(Role.OWNER)


def test_a_tenant_wide_role_holds_in_every_department() -> None:
    alice = Principal("alice", "acme", {None: Role.OPERATOR})
    assert alice.may(Role.OPERATOR, "acme", "support")
    assert alice.may(Role.VIEWER, "acme", None)
    assert not alice.may(Role.EDITOR, "acme", "support")


def test_a_department_role_holds_only_in_its_department() -> None:
    bob = Principal("bob", "acme", {None: Role.VIEWER, "support": Role.EDITOR})
    assert bob.may(Role.EDITOR, "acme", "support")
    assert not bob.may(Role.EDITOR, "acme", "billing")
    assert bob.may(Role.VIEWER, "acme", "billing")
    assert not bob.may(Role.EDITOR, "acme", None)
    carol = Principal("carol", "acme", {"support": Role.VIEWER})
    assert carol.role_in("billing") is None and carol.role_in(None) is None


def test_no_role_holds_in_another_tenant() -> None:
    owner = Principal("root", "acme", {None: Role.OWNER})
    assert not owner.may(Role.VIEWER, "globex", None)
    assert Principal("anyone").tenant == DEFAULT_TENANT


@pytest.mark.parametrize("name", ["default", "acme", "a", "team-7", "a" * 40])
def test_tenant_names_that_fit_topics_and_ids(name: str) -> None:
    assert tenant_problem(name) is None


@pytest.mark.parametrize("name", ["", "Acme", "7up", "a.b", "a_b", "a" * 41, None, 3])
def test_tenant_names_refused_name_the_rule(name: object) -> None:
    problem = tenant_problem(name)
    assert problem is not None and "lowercase letters" in problem
