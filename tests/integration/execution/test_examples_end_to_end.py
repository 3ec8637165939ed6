"""Every example, deployed and run through the REST API of a real worker on the real broker."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from workers import WorkerProcess

from braidflow.connectors.demo_services import pointed_at

EXAMPLES = Path(__file__).parents[3] / "examples"
DEFINITIONS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".answers.yaml"))
NOBODY_PORT = 9000  # new-hire-approval's IT service: nothing serves it in the tests
RUN_TIMEOUT_S = 30.0


def sample_input(definition: Path) -> Any:
    return json.loads(definition.with_suffix(".input.json").read_text())


@pytest.fixture(scope="module")
def deployed(shared_worker: WorkerProcess, demo_services: str) -> dict[str, int]:
    """Every example deployed on the shared worker: id -> version."""
    versions = {}
    for definition in DEFINITIONS:
        reply = shared_worker.api.deploy(pointed_at(definition.read_text(), demo_services))
        assert reply.status == 201, (definition.name, reply)
        assert reply.body == {"id": definition.stem, "version": 1}
        versions[reply.body["id"]] = reply.body["version"]
    return versions


def run(worker: WorkerProcess, workflow_id: str, input_: Any) -> dict[str, Any]:
    execution_id = worker.api.start(workflow_id, input_)
    return worker.wait_until_finished([execution_id], RUN_TIMEOUT_S)[execution_id]


def test_every_example_deploys_as_a_new_workflow(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    assert set(deployed) == {p.stem for p in DEFINITIONS}
    listed = shared_worker.api.get("/workflows").body["workflows"]
    assert {w["id"] for w in listed} >= set(deployed)


def test_order_chain_places_the_order(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    execution = run(shared_worker, "order-chain", sample_input(EXAMPLES / "order-chain.yaml"))
    assert execution["status"] == "completed", execution
    output = execution["output"]
    assert output["order_id"].startswith("ord-")
    assert output | {"order_id": "?"} == {
        "order_id": "?",
        "item": "Widget",
        "quantity": 12,
        "total_cents": 13500,
        "discount_cents": 1500,
    }
    assert [n["node_id"] for n in execution["nodes"]] == ["stock", "price", "place", "done"]


def test_uptime_check_pages_when_the_service_is_down(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    execution = run(shared_worker, "uptime-check", {"service": "checkout", "down": True})
    assert execution["status"] == "completed", execution
    assert execution["output"]["healthy"] is False
    assert execution["output"]["alert"] == {
        "paged": True,
        "service": "checkout",
        "severity": "critical",
        "message": "checkout is down (HTTP 503)",
    }
    statuses = {n["node_id"]: n["status"] for n in execution["nodes"]}
    assert statuses["page"] == "completed" and statuses["log_ok"] == "skipped"


def test_uptime_check_logs_when_the_service_is_up(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    execution = run(shared_worker, "uptime-check", {"service": "checkout"})
    assert execution["status"] == "completed", execution
    assert execution["output"] == {
        "service": "checkout",
        "healthy": True,
        "log": {"logged": True, "message": "checkout is up (HTTP 200)"},
    }
    statuses = {n["node_id"]: n["status"] for n in execution["nodes"]}
    assert statuses["log_ok"] == "completed" and statuses["page"] == "skipped"


def test_fan_out_picks_the_cheapest_carrier(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    execution = run(shared_worker, "fan-out", sample_input(EXAMPLES / "fan-out.yaml"))
    assert execution["status"] == "completed", execution
    output = execution["output"]
    # 1.8 kg: a = 689 + 4 * 100, b = 429 + 4 * 150, c = 299 + 4 * 200.
    assert output["best"] == {"carrier": "b", "price_cents": 1029, "days": 3}
    assert {q["price_cents"] for q in output["quotes"].values()} == {1089, 1029, 1099}
    [join] = execution["joins"]
    assert (join["node_id"], join["arrived"], join["fired"]) == ("quotes", 3, True)


def test_poll_until_done_loops_until_the_job_is_done(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    job = f"j-{uuid.uuid4().hex[:8]}"  # the demo service counts polls per job id
    execution = run(shared_worker, "poll-until-done", {"job": job, "ready_after": 3})
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"job": job, "status": "done", "passes": 3}
    eid = execution["execution_id"]
    children = [shared_worker.api.get(f"/executions/{eid}.poll[{n}]").body for n in range(3)]
    assert [c["status"] for c in children] == ["completed"] * 3
    assert [c["output"]["status"] for c in children] == ["running", "running", "done"]


def test_poll_until_done_gives_up_after_max_iterations(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    job = f"j-{uuid.uuid4().hex[:8]}"
    execution = run(shared_worker, "poll-until-done", {"job": job, "ready_after": 50})
    assert execution["status"] == "completed", execution
    assert execution["output"]["status"] == "gave up"
    assert "after 10 passes (max_iterations: 10)" in execution["output"]["error"]


def test_new_hire_approval_fails_at_the_unreachable_it_service(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", NOBODY_PORT)) == 0:
            pytest.fail(f"something listens on 127.0.0.1:{NOBODY_PORT}; this test needs it free")
    execution = run(shared_worker, "new-hire-approval", {"employee": "ada"})
    assert execution["status"] == "failed", execution
    error = execution["error"]
    assert error["node_id"] == "it"
    assert error["type"].startswith("ClientConnector"), error
    assert f"127.0.0.1:{NOBODY_PORT}" in error["message"]
    assert "connect" in error["message"].lower()
    statuses = {n["node_id"]: n["status"] for n in execution["nodes"]}
    # Not fail-fast: the other branches in flight finish and are recorded.
    assert statuses["it"] == "failed"
    assert statuses["hr"] == statuses["manager"] == "completed"
    assert statuses.get("all_answers") != "completed"


def test_ticket_escalation_starts_on_an_event_and_ends_on_its_resolution(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    ticket = f"T-{uuid.uuid4().hex[:8]}"

    def publish(event_type: str, data: dict[str, Any]) -> None:
        event = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/tests/helpdesk"}
        reply = shared_worker.api.post_json("/events", {**event, "type": event_type, "data": data})
        assert reply.status == 202, reply

    publish("ticket.opened", {"ticket_id": ticket, "priority": "low"})
    publish("ticket.opened", {"ticket_id": ticket, "priority": "high"})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    started: list[dict[str, Any]] = []
    while not started and time.monotonic() < deadline:
        listed = shared_worker.api.get("/workflows/ticket-escalation/executions?limit=1000")
        started = [
            e
            for e in listed.body["executions"]
            if shared_worker.api.execution(e["execution_id"]).body["input"]["ticket_id"] == ticket
        ]
        time.sleep(0.1)
    assert len(started) == 1, "the high-priority ticket starts one execution, the low one none"
    publish("ticket.resolved", {"ticket_id": ticket, "by": "ada"})
    execution_id = started[0]["execution_id"]
    view = shared_worker.wait_until_finished([execution_id], RUN_TIMEOUT_S)[execution_id]
    assert view["output"] == {"ticket_id": ticket, "resolved_by": "ada"}


def test_hire_approvals_proceeds_when_all_approve_and_stops_when_one_rejects(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    hired = shared_worker.api.start("hire-approvals", {"employee": "ada"})
    turned_down = shared_worker.api.start("hire-approvals", {"employee": "bob"})

    def pending(execution_id: str) -> set[str]:
        reply = shared_worker.api.get("/approvals?workflow=hire-approvals&department=people")
        return {a["node_id"] for a in reply.body["approvals"] if a["execution_id"] == execution_id}

    for execution_id in (hired, turned_down):
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while pending(execution_id) != {"it", "hr", "manager"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pending(execution_id) == {"it", "hr", "manager"}

    # Each lead decides with a key of their own: the decision is by the key's name.
    leads = {
        n: shared_worker.api.as_new_key("operator", f"{n}-lead") for n in ("it", "hr", "manager")
    }

    def decide(execution_id: str, node: str, choice: str, data: Any = None) -> None:
        body = {"choice": choice, "data": data}
        reply = leads[node].post_json(f"/executions/{execution_id}/approvals/{node}", body)
        assert reply.status == 200, reply

    decide(hired, "it", "approve", {"laptop": "ordered"})
    decide(hired, "hr", "approve")
    decide(hired, "manager", "approve")
    decide(turned_down, "it", "approve")
    decide(turned_down, "hr", "approve")
    decide(turned_down, "manager", "reject")
    views = shared_worker.wait_until_finished([hired, turned_down], RUN_TIMEOUT_S)
    assert views[hired]["output"] == {
        "employee": "ada",
        "hired": True,
        "welcome": {"ok": True, "employee": "ada"},
    }
    assert views[turned_down]["output"]["hired"] is False
    assert views[turned_down]["output"]["answers"]["manager"]["choice"] == "reject"
    decisions = [c for c in views[hired]["control"] if c["action"] == "approval"]
    assert {(c["node_id"], c["by"]) for c in decisions} == {
        ("it", "it-lead"),
        ("hr", "hr-lead"),
        ("manager", "manager-lead"),
    }


def test_invoice_batch_taxes_each_invoice_and_lists_the_ones_it_could_not(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    invoices = [
        {"id": "inv-1", "country": "DE", "net_cents": 10000},
        {"id": "inv-2", "country": "US", "net_cents": 5000},
        {"id": "inv-3", "country": "FR", "net_cents": 2000},
    ]
    execution = run(shared_worker, "invoice-batch", {"invoices": invoices})
    assert execution["status"] == "completed", execution
    assert execution["output"]["taxed"] == [
        {"invoice": "inv-1", "vat_cents": 1900, "gross_cents": 11900},
        {"invoice": "inv-3", "vat_cents": 400, "gross_cents": 2400},
    ]
    [failed] = execution["output"]["failed"]
    assert failed["index"] == 1 and failed["type"] == "ValueError"
    assert "no VAT rate for 'US'" in failed["message"]
