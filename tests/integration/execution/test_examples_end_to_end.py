"""Every example, deployed and run through the REST API of a real worker on the real broker:
the example departments (examples/support/) first, then their workflows."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from waiting import until
from workers import HELPDESK_TOKEN, WorkerProcess

from braidflow.connectors.demo_services import pointed_at
from braidflow.dev import DEPARTMENT_FILE, _example_files

EXAMPLES = Path(__file__).parents[3] / "examples"
# In the order dev mode deploys them: a department before its workflows.
DEFINITIONS = _example_files(EXAMPLES)
WORKFLOWS = [p for p in DEFINITIONS if p.name != DEPARTMENT_FILE]
# The support escalation waits 2 minutes for a resolution; here 3 seconds, so its timeout
# (and the department's alert) comes within the test.
SHORTER_WAITS = {"support-escalation": ("timeout: 2m", "timeout: 3s")}
NOBODY_PORT = 9000  # new-hire-approval's IT service: nothing serves it in the tests
RUN_TIMEOUT_S = 30.0


def sample_input(definition: Path) -> Any:
    return json.loads(definition.with_suffix(".input.json").read_text())


def definition_text(definition: Path, demo_url: str) -> str:
    text = pointed_at(definition.read_text(), demo_url)
    if definition.stem in SHORTER_WAITS:
        longer, shorter = SHORTER_WAITS[definition.stem]
        assert longer in text, definition
        text = text.replace(longer, shorter)
    return text


@pytest.fixture(scope="module")
def deployed(shared_worker: WorkerProcess, demo_services: str) -> dict[str, int]:
    """Every example deployed on the shared worker: workflow id -> version."""
    versions = {}
    for definition in DEFINITIONS:
        reply = shared_worker.api.deploy(definition_text(definition, demo_services))
        assert reply.status == 201, (definition, reply)
        if definition.name == DEPARTMENT_FILE:
            assert reply.body == {"department": definition.parent.name, "version": 1}
            continue
        assert reply.body == {"id": definition.stem, "version": 1}
        versions[reply.body["id"]] = reply.body["version"]
    return versions


def run(worker: WorkerProcess, workflow_id: str, input_: Any) -> dict[str, Any]:
    execution_id = worker.api.start(workflow_id, input_)
    return worker.wait_until_finished([execution_id], RUN_TIMEOUT_S)[execution_id]


def test_every_example_deploys_as_a_new_workflow(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    assert set(deployed) == {p.stem for p in WORKFLOWS}
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


def publish(
    worker: WorkerProcess,
    event_type: str,
    data: dict[str, Any],
    department: str | None = None,
    subject: str | None = None,
) -> None:
    event = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/tests/helpdesk"}
    if department is not None:
        event["department"] = department
    if subject is not None:
        event["subject"] = subject  # the record key: one subject, one partition, in order
    reply = worker.api.post_json("/events", {**event, "type": event_type, "data": data})
    assert reply.status == 202, reply


def started_for(worker: WorkerProcess, workflow_id: str, ticket: str) -> list[dict[str, Any]]:
    """The executions of `workflow_id` whose input names `ticket`, once there is one."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    started: list[dict[str, Any]] = []
    while not started and time.monotonic() < deadline:
        listed = worker.api.get(f"/workflows/{workflow_id}/executions?limit=1000")
        started = [
            e
            for e in listed.body["executions"]
            if worker.api.execution(e["execution_id"]).body["input"].get("ticket_id") == ticket
        ]
        time.sleep(0.1)
    return started


def test_ticket_escalation_starts_on_an_event_and_ends_on_its_resolution(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    publish(shared_worker, "ticket.opened", {"ticket_id": ticket, "priority": "low"})
    publish(shared_worker, "ticket.opened", {"ticket_id": ticket, "priority": "high"})
    started = started_for(shared_worker, "ticket-escalation", ticket)
    assert len(started) == 1, "the high-priority ticket starts one execution, the low one none"
    publish(shared_worker, "ticket.resolved", {"ticket_id": ticket, "by": "ada"})
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


def received_alerts(demo_url: str) -> list[dict[str, Any]]:
    """What the demo services' alert channel (the support department's) has received."""
    with urllib.request.urlopen(f"{demo_url}/alerts", timeout=5) as answer:
        return json.loads(answer.read())["alerts"]


def test_the_support_department_triages_escalates_alerts_and_surveys(
    shared_worker: WorkerProcess, deployed: dict[str, int], demo_services: str
) -> None:
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    created = {"ticket_id": ticket, "priority": "high", "customer_email": "ada@example.test"}
    publish(shared_worker, "ticket.created", created, department="support")
    [triage] = started_for(shared_worker, "support-triage", ticket)
    view = shared_worker.wait_until_finished([triage["execution_id"]], RUN_TIMEOUT_S)[
        triage["execution_id"]
    ]
    assert view["status"] == "completed", view
    # The helpdesk took the call (it wants the department's credential) and echoed the
    # department's address the triage read as dept.support_email.
    assign = next(n for n in view["nodes"] if n["node_id"] == "assign")
    assert assign["output"]["body"] == {
        "ticket_id": ticket,
        "queue": "urgent",
        "assignee": "ada",
        "reply_to": "help@acme.test",
    }
    assert HELPDESK_TOKEN not in json.dumps(view)

    # High priority: the escalation runs as a sub-workflow, nobody resolves the ticket in
    # time, its wait times out, and the department's alert channel is told.
    escalation = view["output"]["escalation"]
    escalated = shared_worker.wait_until_finished([escalation], RUN_TIMEOUT_S)[escalation]
    assert escalated["status"] == "failed", escalated
    assert (escalated["error"]["node_id"], escalated["error"]["type"]) == ("resolved", "Timeout")
    [alert] = until(
        lambda: [
            a for a in received_alerts(demo_services) if a["data"]["execution_id"] == escalation
        ],
        "the support department's alert for the escalation",
    )
    assert (alert["type"], alert["department"]) == ("braidflow.department.alert", "support")
    data = alert["data"]
    assert (data["workflow"], data["status"], data["node"]) == (
        "support-escalation",
        "timed_out",
        "resolved",
    )

    # Resolved after all: the survey asks the customer, signed with dept.company_name.
    resolved = {"ticket_id": ticket, "by": "ada", "customer_email": "ada@example.test"}
    publish(shared_worker, "ticket.resolved", resolved, department="support")
    [survey] = started_for(shared_worker, "support-survey", ticket)
    asked = shared_worker.wait_until_finished([survey["execution_id"]], RUN_TIMEOUT_S)[
        survey["execution_id"]
    ]
    assert asked["status"] == "completed", asked
    assert asked["output"]["subject"] == f"How did Acme do on ticket {ticket}?"
    assert asked["output"]["survey"].startswith("survey-")


def test_the_support_weekly_report_reads_the_helpdesk_figures_with_the_credential(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    execution = run(shared_worker, "support-weekly-report", {})
    assert execution["status"] == "completed", execution
    output = execution["output"]
    assert (output["to"], output["title"]) == ("help@acme.test", "Acme support, last 7 days")
    assert set(output["figures"]) == {"days", "assigned", "escalated", "surveys"}
    assert output["figures"]["days"] == 7


def test_a_ticket_event_of_no_department_starts_no_triage(
    shared_worker: WorkerProcess, deployed: dict[str, int]
) -> None:
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    # One subject, so one partition: once the second has started triage, the router has
    # passed the first, and a triage it had started would be listed too.
    publish(
        shared_worker, "ticket.created", {"ticket_id": ticket, "priority": "low"}, subject=ticket
    )
    publish(
        shared_worker, "ticket.created", {"ticket_id": ticket}, department="support", subject=ticket
    )
    [started] = started_for(shared_worker, "support-triage", ticket)
    # The department's event, not the other (which alone says priority).
    assert shared_worker.api.execution(started["execution_id"]).body["input"] == {
        "ticket_id": ticket
    }


def received_mails(demo_url: str) -> list[dict[str, Any]]:
    """What the demo SMTP sink has received."""
    with urllib.request.urlopen(f"{demo_url}/mail", timeout=5) as answer:
        return json.loads(answer.read())["mails"]


def test_ticket_triage_mails_the_reply_the_on_call_lead_approved_and_sends_a_bug_on(
    shared_worker: WorkerProcess, deployed: dict[str, int], demo_services: str
) -> None:
    ticket = f"T-{uuid.uuid4().hex[:8]}"
    question = sample_input(EXAMPLES / "ticket-triage.yaml") | {"ticket_id": ticket}
    asked = shared_worker.api.start("ticket-triage", question)
    bug = {**question, "subject": "Checkout is broken: a bug", "body": "The pay button fails."}
    broken = shared_worker.api.start("ticket-triage", bug)

    pending = until(
        lambda: [
            a
            for a in shared_worker.api.get("/approvals?workflow=ticket-triage").body["approvals"]
            if a["execution_id"] == asked
        ],
        "the on-call lead's approval",
    )
    assert pending[0]["node_id"] == "approve"
    assert "demo model" in pending[0]["message"]
    # Only the on-call lead (or an owner) may decide.
    someone = shared_worker.api.as_new_key("operator", f"someone-{uuid.uuid4().hex[:6]}")
    body = {"choice": "approve", "data": None}
    assert someone.post_json(f"/executions/{asked}/approvals/approve", body).status == 403
    lead = shared_worker.api.as_new_key("operator", "oncall-lead")
    assert lead.post_json(f"/executions/{asked}/approvals/approve", body).status == 200

    views = shared_worker.wait_until_finished([asked, broken], RUN_TIMEOUT_S)
    assert views[asked]["status"] == "completed", views[asked]
    output = views[asked]["output"]
    assert (output["label"], output["approved_by"]) == ("question", "oncall-lead")
    [mail] = [m for m in received_mails(demo_services) if m["message_id"] == output["message_id"]]
    assert mail["to"] == [question["customer_email"]]
    assert mail["subject"] == f"Re: {question['subject']} [{ticket}]"
    assert "demo model" in mail["text"]
    assert views[broken]["output"] == {"ticket_id": ticket, "label": "bug", "queue": "engineering"}
