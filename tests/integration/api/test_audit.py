"""The audit log of a running worker: every change made through the API is listed by
`GET /api/v1/audit` with who, what and when, newest first; reads and refusals leave no record;
a second worker lists the same records; `braidflow audit` prints them."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from suite_broker import SuiteBroker
from waiting import until
from workers import SUITE_OWNER, WorkerProcess

from braidflow.access import Principal, Role
from braidflow.cli import main
from braidflow.connectors.audit_writer import write_audit

REVIEW = """
id: audit-review
nodes:
  - {id: review, type: approval, params: {message: "Ship it?"}, timeout: 1d}
  - {id: done, type: end}
edges:
  - {from: review, to: done}
"""
CHARGE = """
id: audit-charge
nodes:
  - {id: charge, type: task, params: {handler: test.boom, input: {card: 4242}}}
  - {id: done, type: end}
edges:
  - {from: charge, to: done}
"""


@pytest.fixture(scope="module")
def worker(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker of its own, so its audit log holds only what these tests did."""
    home = tmp_path_factory.mktemp("audit-worker")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    found = WorkerProcess(broker, prefix, home / "data", home / "worker.log")
    try:
        yield found.start().wait_ready()
    finally:
        found.stop()


def records(worker: WorkerProcess, **query: Any) -> list[dict[str, Any]]:
    reply = worker.api.get(f"/audit?{urllib.parse.urlencode(query)}" if query else "/audit")
    assert reply.status == 200, reply
    return list(reply.body["records"])


def listed(worker: WorkerProcess, count: int) -> list[dict[str, Any]]:
    """The audit log once it lists `count` records (the read model follows the topic)."""

    def enough() -> list[dict[str, Any]] | None:
        found = records(worker, limit=1000)
        return found if len(found) >= count else None

    return until(enough, f"{count} audit records listed by {worker.name}")


def changed(worker: WorkerProcess, count: int) -> list[dict[str, Any]]:
    """The `count` newest records, after a marker change (a deploy of a changed text):
    once the marker is listed, so is every record written before it."""
    before = len(records(worker, limit=1000))
    assert worker.api.deploy(REVIEW.replace("Ship it?", "Marker")).status in (200, 201)
    return listed(worker, before + 1)[: count + 1]


@pytest.fixture(scope="module")
def history(worker: WorkerProcess) -> dict[str, str]:
    """Deploy, start, cancel, decide an approval, redrive, delete: the ids involved."""
    api = worker.api
    assert api.deploy(REVIEW).status == 201
    cancelled = api.start("audit-review", {})
    decided = api.start("audit-review", {})
    reply = api.post_json(f"/executions/{cancelled}/cancel", {"reason": "duplicate"})
    assert reply.status == 202, reply
    until(
        lambda: any(a["execution_id"] == decided for a in api.get("/approvals").body["approvals"]),
        "the approval waiting",
    )
    reply = api.post_json(f"/executions/{decided}/approvals/review", {"choice": "approve"})
    assert reply.status == 200, reply
    assert api.deploy(CHARGE).status == 201
    failed = api.start("audit-charge", {})
    letter = until(
        lambda: next(
            (
                d["id"]
                for d in api.get("/dead-letters").body["dead_letters"]
                if d.get("execution_id") == failed
            ),
            None,
        ),
        "the dead letter",
    )
    assert worker.wait_until_finished([failed])[failed]["status"] == "failed"
    reply = api.post_json(f"/dead-letters/{letter}/redrive", {"input": {"card": "5555"}})
    assert reply.status == 202, reply
    assert api.request("DELETE", "/workflows/audit-review").status == 200
    listed(worker, 9)
    return {"cancelled": cancelled, "decided": decided, "failed": failed, "letter": letter}


def test_each_change_is_listed_with_who_what_and_when_newest_first(
    worker: WorkerProcess, history: dict[str, str]
) -> None:
    found = records(worker)[:9]
    assert [(r["action"], r["target"]) for r in found] == [
        ("remove_workflow", {"workflow": "audit-review"}),
        (
            "redrive",
            {"dead_letter": history["letter"], "execution": history["failed"], "node": "charge"},
        ),
        ("start", {"workflow": "audit-charge", "execution": history["failed"], "version": "1"}),
        ("deploy", {"workflow": "audit-charge", "version": "1"}),
        ("decide", {"execution": history["decided"], "approval": "review"}),
        ("cancel", {"execution": history["cancelled"]}),
        ("start", {"workflow": "audit-review", "execution": history["decided"], "version": "1"}),
        ("start", {"workflow": "audit-review", "execution": history["cancelled"], "version": "1"}),
        ("deploy", {"workflow": "audit-review", "version": "1"}),
    ]
    assert {(r["principal"], r["tenant"], r["source"]) for r in found} == {
        (SUITE_OWNER, "default", "/braidflow/api")
    }
    assert [r["at"] for r in found] == sorted((r["at"] for r in found), reverse=True)
    details = {r["action"]: r["detail"] for r in found}
    assert details["cancel"] == {"reason": "duplicate"}
    assert details["decide"] == {"choice": "approve"}
    # A patched input is noted, never kept.
    assert details["redrive"] == {"input": "(given)"}


def test_the_log_is_filtered_by_principal_target_and_time(
    worker: WorkerProcess, history: dict[str, str]
) -> None:
    cancelled = history["cancelled"]
    assert [r["action"] for r in records(worker, target=cancelled)] == ["cancel", "start"]
    assert records(worker, principal="nobody") == []
    everything = records(worker, principal=SUITE_OWNER, limit=1000)
    assert len(everything) >= 9
    assert len(records(worker, limit=2)) == 2
    at = next(r["at"] for r in everything if r["action"] == "cancel")
    later = records(worker, **{"from": at, "limit": 1000})
    earlier = records(worker, to=at, limit=1000)
    assert {r["id"] for r in later} == {r["id"] for r in everything if r["at"] >= at}
    assert {r["id"] for r in earlier} == {r["id"] for r in everything if r["at"] <= at}
    assert "cancel" in [r["action"] for r in later] and "cancel" in [r["action"] for r in earlier]
    reply = worker.api.get("/audit?from=yesterday")
    assert (reply.status, reply.body.get("field")) == (400, "from"), reply


def test_reads_and_refused_requests_leave_no_record(
    worker: WorkerProcess, history: dict[str, str]
) -> None:
    api = worker.api
    assert api.get("/workflows").status == 200
    assert api.execution(history["decided"]).status == 200
    assert api.get("/audit").status == 200
    assert api.post_json("/workflows/no-such-flow/executions", {"input": {}}).status == 404
    assert api.post_json(f"/executions/{history['cancelled']}/cancel", {"bye": 1}).status == 400
    reply = api.post_json(
        f"/executions/{history['decided']}/approvals/review", {"choice": "approve"}
    )
    assert reply.status == 409, reply
    newest = changed(worker, 1)
    assert newest[0]["action"] == "deploy" and newest[0]["target"]["workflow"] == "audit-review"
    assert newest[1]["action"] == "remove_workflow", "a read or a refusal left a record"


def test_a_record_the_command_line_writes_to_kafka_is_listed_to_its_tenant_alone(
    worker: WorkerProcess, broker: SuiteBroker, history: dict[str, str]
) -> None:
    producer = Producer(broker.confluent())
    other = Principal("eve", "acme", {None: Role.OWNER})
    write_audit(producer, f"{worker.prefix}.audit", "create_key", other, target={"key": "ci-bot"})
    lead = Principal("lead", "default", {None: Role.OWNER})
    record = write_audit(
        producer,
        f"{worker.prefix}.audit",
        "create_key",
        lead,
        target={"key": "ci-bot"},
        detail={"role": "operator"},
    )
    found = until(lambda: records(worker, target="ci-bot"), "the record the command line wrote")
    # One partition, in order: the other tenant's record, written first, is read by now.
    assert found == [record.view()]
    assert found[0]["source"] == "/braidflow/cli" and found[0]["principal"] == "lead"


def test_the_cli_prints_the_log_newest_first(
    worker: WorkerProcess, history: dict[str, str]
) -> None:
    result = CliRunner(env={"BRAIDFLOW_API_KEY": worker.api.key}).invoke(
        main, ["audit", "--target", history["cancelled"], "--api", worker.api.base_url]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2, lines
    assert "  cancel " in lines[0] and f"{SUITE_OWNER}@default" in lines[0]
    assert f"execution={history['cancelled']}" in lines[0] and "reason=duplicate" in lines[0]
    assert "  start " in lines[1]
    result = CliRunner(env={"BRAIDFLOW_API_KEY": worker.api.key}).invoke(
        main, ["audit", "--principal", "nobody", "--api", worker.api.base_url]
    )
    assert (result.exit_code, result.output) == (0, "no audit records\n")


def test_a_second_worker_lists_the_same_records(
    worker: WorkerProcess, broker: SuiteBroker, tmp_path: Path, history: dict[str, str]
) -> None:
    second = WorkerProcess(broker, worker.prefix, tmp_path / "data", tmp_path / "second.log")
    try:
        second.start().wait_ready()
        expected = records(worker, limit=1000)
        assert until(
            lambda: records(second, limit=1000) == expected, f"{second.name} listing the same log"
        )
    finally:
        second.stop()
