"""The caller of an API request (braidflow/connectors/api/caller.py)."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from braidflow.access import Principal, Role
from braidflow.connectors.api.caller import UNAUTHENTICATED, act_as, principal_of


def test_a_request_acts_as_the_principal_recorded_for_it() -> None:
    request = make_mocked_request("GET", "/api/v1/workflows")
    assert principal_of(request) == UNAUTHENTICATED
    alice = Principal("alice", "acme", {None: Role.VIEWER})
    act_as(request, alice)
    assert principal_of(request) == alice
