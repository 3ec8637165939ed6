"""Authentication and roles in the API (braidflow/connectors/api/authentication.py and the
roles each operation declares), and approvers (braidflow/topology/approvers.py)."""

from __future__ import annotations

import pytest

from braidflow.access import Role
from braidflow.connectors.api import RESOURCES, Unauthorized
from braidflow.connectors.api.authentication import credential, off_problem
from braidflow.connectors.api.openapi import document
from braidflow.topology import DefinitionError, load_workflow
from braidflow.topology.approvers import may_decide

OPEN = {"health", "ready", "metrics", "webhook", "tenant_webhook"}
LEAST = {
    "create_key": Role.OWNER,
    "list_keys": Role.OWNER,
    "revoke_key": Role.OWNER,
    "list_audit": Role.OWNER,
    "deploy": Role.EDITOR,
    "create_draft": Role.EDITOR,
    "rollback": Role.EDITOR,
    "remove_workflow": Role.EDITOR,
    "start": Role.OPERATOR,
    "cancel": Role.OPERATOR,
    "pause": Role.OPERATOR,
    "resume": Role.OPERATOR,
    "decide": Role.OPERATOR,
    "redrive": Role.OPERATOR,
    "publish": Role.OPERATOR,
    "backfill": Role.OPERATOR,
}


def test_every_operation_declares_its_least_role_and_the_document_its_bearer_scheme() -> None:
    doc = document(RESOURCES)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for operation in (op for r in RESOURCES for op in r.operations):
        name = operation.spec["operationId"]
        if name in OPEN:
            assert operation.role is None and operation.spec["security"] == [], name
            continue
        assert operation.role == LEAST.get(name, Role.VIEWER), name
        assert operation.spec["security"] == [{"bearer": []}], name
        assert {"401", "403"} <= set(operation.spec["responses"]), name


def test_authentication_is_off_only_on_127_0_0_1() -> None:
    assert off_problem("127.0.0.1") is None
    for host in ("0.0.0.0", "10.0.0.5", "api.example.com", "::"):
        problem = off_problem(host)
        assert problem is not None and "127.0.0.1" in problem and host in problem


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "bfk_x"])
def test_a_missing_or_malformed_authorization_is_a_401_naming_it(header: str | None) -> None:
    with pytest.raises(Unauthorized) as refused:
        credential(header)
    assert refused.value.field == "Authorization"


def test_the_bearer_credential_is_read() -> None:
    assert credential("Bearer bfk_a_b") == "bfk_a_b"
    assert credential("bearer  tok ") == "tok"


def test_approvers_are_role_names_or_principal_names() -> None:
    assert may_decide(None, "anyone", Role.OPERATOR)
    assert may_decide(["ana"], "ana", Role.OPERATOR)
    assert not may_decide(["ana"], "olga", Role.OPERATOR)
    assert may_decide(["editor"], "olga", Role.OWNER)
    assert not may_decide(["editor"], "olga", Role.OPERATOR)
    assert not may_decide(["editor", "ana"], "olga", None)


def test_an_approval_names_its_approvers_as_a_list_of_names() -> None:
    node = "{id: ask, type: approval, params: {approvers: %s}}"
    text = "id: w\nnodes:\n  - %s\n  - {id: done, type: end}\nedges: [{from: ask, to: done}]\n"
    assert load_workflow(text % (node % "[editor, ana]")).nodes["ask"].node.params["approvers"] == [
        "editor",
        "ana",
    ]
    for bad in ("[]", "ana", "[1]"):
        with pytest.raises(DefinitionError) as refused:
            load_workflow(text % (node % bad))
        assert "approvers" in str(refused.value.problems)
