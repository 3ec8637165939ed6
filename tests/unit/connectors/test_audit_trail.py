"""Every change made through the API is audited by one middleware
(braidflow/connectors/api/audit.py), from what each operation declares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from braidflow.access import Principal, Role
from braidflow.connectors.api import RESOURCES
from braidflow.connectors.api.audit import OPERATIONS, audit_trail, operations_by_id, target_of
from braidflow.connectors.api.backend import BACKEND
from braidflow.connectors.api.caller import act_as
from braidflow.connectors.api.errors import Conflict, Unconfirmed, refusals
from braidflow.connectors.api.openapi import Audited, Resource
from braidflow.schemas.audit import GIVEN, AuditRecord

NOW = 1_764_900_000_000


def test_path_ids_are_named_after_the_segment_before_them() -> None:
    ids = {"id": "X", "node": "N", "n": "3"}
    assert target_of("/api/v1/workflows/{id}", ids) == {"workflow": "X"}
    assert target_of("/api/v1/executions/{id}/approvals/{node}", ids) == {
        "execution": "X",
        "approval": "N",
    }
    assert target_of("/api/v1/dead-letters/{id}/redrive", ids) == {"dead_letter": "X"}
    assert target_of("/api/v1/workflows/{id}/versions/{n}", ids) == {
        "workflow": "X",
        "version": "3",
    }
    assert target_of("/api/v1/workflows", ids) == {}


def test_every_operation_but_a_get_is_audited_unless_it_opts_out() -> None:
    operations = [op for r in RESOURCES for op in r.operations]
    assert all(op.audit is None for op in operations if op.method == "GET")
    not_audited = {
        op.spec["operationId"] for op in operations if op.method != "GET" and op.audit is None
    }
    assert not_audited == {"webhook", "tenant_webhook"}
    # The answer when its record cannot be written.
    assert all("503" in op.spec["responses"] for op in operations if op.audit is not None)


def test_an_operation_declared_anywhere_is_audited_by_default() -> None:
    keys = Resource("keys", "API keys")

    @keys.operation(
        "POST", "/keys/{id}/revoke", summary="Revoke", responses={200: {}}, role=Role.OWNER
    )
    async def revoke(_: web.Request) -> web.Response:
        return web.json_response({})

    @keys.operation("GET", "/keys", summary="List", responses={200: {}}, role=Role.OWNER)
    async def list_keys(_: web.Request) -> web.Response:
        return web.json_response({})

    assert [op.audit for op in keys.operations] == [Audited(), None]


class AuditSink:
    """The part of a backend the middleware uses: a clock and a log that takes or refuses."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.broken = False

    def for_tenant(self, tenant: str) -> AuditSink:
        return self

    def now_ms(self) -> int:
        return NOW

    async def write_audit(self, record: AuditRecord) -> None:
        if self.broken:
            raise ConnectionError("broker unreachable")
        self.records.append(record)


orders = Resource("orders", "Orders, to audit")


@orders.operation(
    "POST",
    "/orders/{id}/refund",
    summary="Refund",
    responses={202: {}},
    audit=Audited(detail=("reason",), given=("card",), answer={"refund_id": "refund"}),
    role=Role.OPERATOR,
)
async def refund(request: web.Request) -> web.Response:
    body = await request.json()
    if body.get("reason") == "twice":
        raise Conflict("refunded already")
    if body.get("reason") == "slow":
        raise Unconfirmed("the refund was sent but is not applied yet")
    return web.json_response({"refund_id": "r9", "amount": 5}, status=202)


@orders.operation("GET", "/orders/{id}", summary="Show", responses={200: {}}, role=Role.VIEWER)
async def show_order(_: web.Request) -> web.Response:
    return web.json_response({})


@orders.operation(
    "POST",
    "/orders/{id}/preview",
    summary="Preview",
    responses={200: {}},
    audit=None,
    role=Role.VIEWER,
)
async def preview(_: web.Request) -> web.Response:
    return web.json_response({})


@web.middleware
async def as_ana(request: web.Request, handler: Any) -> web.StreamResponse:
    act_as(request, Principal("ana", "acme", {None: Role.OPERATOR}))
    return await handler(request)


@pytest.fixture
async def api() -> AsyncIterator[tuple[TestClient, AuditSink]]:
    sink = AuditSink()
    app = web.Application(middlewares=[as_ana, refusals, audit_trail])
    app[BACKEND] = sink  # type: ignore[assignment]
    app[OPERATIONS] = operations_by_id([orders])
    orders.add_to(app.router)
    async with TestClient(TestServer(app)) as client:
        yield client, sink


async def test_a_change_is_recorded_with_who_what_and_a_bounded_detail(
    api: tuple[TestClient, AuditSink],
) -> None:
    client, sink = api
    body = {"reason": "damaged", "card": "4242 4242 4242 4242", "notes": "call me at 555"}
    reply = await client.post("/api/v1/orders/o1/refund", json=body)
    assert reply.status == 202
    [record] = sink.records
    assert (record.action, record.principal, record.tenant, record.at) == (
        "refund",
        "ana",
        "acme",
        NOW,
    )
    assert record.target == {"order": "o1", "refund": "r9"}
    assert record.detail == {"reason": "damaged", "card": GIVEN}


async def test_reads_refusals_and_opted_out_operations_leave_no_record(
    api: tuple[TestClient, AuditSink],
) -> None:
    client, sink = api
    assert (await client.get("/api/v1/orders/o1")).status == 200
    assert (await client.post("/api/v1/orders/o1/refund", json={"reason": "twice"})).status == 409
    assert (await client.post("/api/v1/orders/o1/preview")).status == 200
    assert (await client.post("/api/v1/no/such/route")).status == 404
    assert sink.records == []


async def test_a_change_whose_record_cannot_be_written_answers_503_saying_it_was_made(
    api: tuple[TestClient, AuditSink],
) -> None:
    client, sink = api
    sink.broken = True
    reply = await client.post("/api/v1/orders/o1/refund", json={"reason": "damaged"})
    assert reply.status == 503
    error = (await reply.json())["error"]
    assert "refund was made" in error and "audit record could not be written" in error
    assert "broker unreachable" in error


async def test_a_change_sent_but_not_seen_applied_is_recorded_as_unconfirmed(
    api: tuple[TestClient, AuditSink],
) -> None:
    client, sink = api
    reply = await client.post("/api/v1/orders/o1/refund", json={"reason": "slow"})
    assert reply.status == 503
    [record] = sink.records
    assert record.target == {"order": "o1"}
    assert record.detail == {"reason": "slow", "unconfirmed": True}
