"""An identity provider's claims read as a Principal (braidflow/connectors/token_claims.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from braidflow.access import DEFAULT_TENANT, Principal, Role
from braidflow.connectors.token_claims import (
    DEFAULT_CLAIMS,
    ClaimError,
    ClaimNames,
    principal_from_claims,
)


def test_sub_tenant_and_roles_become_the_principal() -> None:
    claims = {"sub": "ada", "tenant": "acme", "roles": ["viewer", "support:operator"]}
    principal = principal_from_claims(claims, DEFAULT_CLAIMS)
    assert principal == Principal("ada", "acme", {None: Role.VIEWER, "support": Role.OPERATOR})
    assert principal.may(Role.OPERATOR, "acme", "support")
    assert not principal.may(Role.OPERATOR, "acme", "billing")


def test_without_a_tenant_claim_the_principal_is_of_the_default_tenant() -> None:
    principal = principal_from_claims({"sub": "ada", "roles": ["editor"]}, DEFAULT_CLAIMS)
    assert principal == Principal("ada", DEFAULT_TENANT, {None: Role.EDITOR})


def test_of_several_roles_for_one_department_the_highest_counts() -> None:
    claims = {"sub": "ada", "roles": ["hr:owner", "hr:viewer", "editor", "viewer"]}
    assert principal_from_claims(claims, DEFAULT_CLAIMS).roles == {
        "hr": Role.OWNER,
        None: Role.EDITOR,
    }


def test_an_empty_roles_list_is_a_principal_who_may_do_nothing() -> None:
    principal = principal_from_claims({"sub": "ada", "roles": []}, DEFAULT_CLAIMS)
    assert principal.roles == {}
    assert not principal.may(Role.VIEWER, DEFAULT_TENANT)


def test_configured_claim_names_are_read() -> None:
    names = ClaimNames(tenant="https://example.com/org", roles="groups")
    claims = {"sub": "ada", "https://example.com/org": "acme", "groups": ["owner"], "roles": 7}
    assert principal_from_claims(claims, names) == Principal("ada", "acme", {None: Role.OWNER})


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"roles": ["viewer"]}, "claim 'sub' must be a non-empty string"),
        ({"sub": "", "roles": ["viewer"]}, "claim 'sub' must be a non-empty string"),
        ({"sub": 7, "roles": ["viewer"]}, "claim 'sub' must be a non-empty string"),
        ({"sub": "ada"}, "claim 'roles' missing"),
        ({"sub": "ada", "roles": "editor"}, "claim 'roles' must be a list"),
        ({"sub": "ada", "roles": ["admin"]}, "claim 'roles': 'admin' is not a role"),
        ({"sub": "ada", "roles": ["support:boss"]}, "claim 'roles': 'boss' is not a role"),
        ({"sub": "ada", "roles": [":viewer"]}, "':viewer' names no department"),
        ({"sub": "ada", "roles": [3]}, "claim 'roles': 3 is not a string"),
        ({"sub": "ada", "tenant": "Acme Corp", "roles": []}, "claim 'tenant': tenant 'Acme Corp'"),
        ({"sub": "ada", "tenant": 12, "roles": []}, "claim 'tenant': tenant 12"),
    ],
)
def test_a_claim_missing_or_malformed_is_named(claims: dict[str, Any], message: str) -> None:
    with pytest.raises(ClaimError, match=message.replace("[", r"\[")):
        principal_from_claims(claims, DEFAULT_CLAIMS)


def test_the_documented_example_payload_is_the_principal_it_describes() -> None:
    page = (Path(__file__).parents[3] / "docs" / "identity-providers.md").read_text()
    payload = json.loads(page.split("```json\n", 1)[1].split("```", 1)[0])
    assert principal_from_claims(payload, DEFAULT_CLAIMS) == Principal(
        "ada@acme.example", "acme", {None: Role.VIEWER, "support": Role.OPERATOR}
    )
