"""Department alerts against a real worker and a real aiohttp server on 127.0.0.1: a failing
and a timing-out execution of a department are POSTed to its webhook and published as
`braidflow.department.alert`, which starts a workflow subscribed to it; a succeeding execution
alerts nobody; an alert whose webhook refuses survives the worker's SIGKILL."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from background_loop import BackgroundLoop
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.connectors.broker import free_port

HOOK_TOKEN = "hk-5e0c7a19d3"


@dataclass
class Receiver:
    """What the test's server was sent: alerts by webhook name, and what a subscribed
    workflow reported."""

    url: str
    alerts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    content_types: list[str] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    refusing: set[str] = field(default_factory=set)
    tokens: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts_of(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.alerts.get(name, ()))


@pytest.fixture(scope="module")
def receiver(background_loop: BackgroundLoop) -> Iterator[Receiver]:
    port = free_port()
    received = Receiver(f"http://127.0.0.1:{port}")

    async def alert(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with received.lock:
            if "token" in request.query:
                received.tokens.append(request.query["token"])
            if name in received.refusing:
                received.refused[name] = received.refused.get(name, 0) + 1
                return web.Response(status=503, text="down for maintenance")
            received.alerts.setdefault(name, []).append(await request.json())
            received.content_types.append(request.headers.get("Content-Type", ""))
        return web.Response(status=204)

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=503, text="helpdesk is down")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(20)
        return web.Response(text="late")

    async def seen(request: web.Request) -> web.Response:
        with received.lock:
            received.seen.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/alerts/{name}", alert)
    app.router.add_get("/fail", fail)
    app.router.add_get("/slow", slow)
    app.router.add_post("/seen", seen)
    runner = background_loop.serve(app, "127.0.0.1", port)
    yield received
    background_loop.run(runner.cleanup())


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def deploy(worker: WorkerProcess, text: str) -> None:
    reply = worker.api.deploy(text)
    assert reply.status in (200, 201), reply


def department(name: str, receiver: Receiver) -> str:
    return f"""
kind: Department
name: {name}
settings:
  alert_channels:
    - {{webhook: "{receiver.url}/alerts/{name}"}}
"""


def failing(workflow: str, dept: str, receiver: Receiver) -> str:
    return f"""
id: {workflow}
department: {dept}
nodes:
  - {{id: call, type: http, retry: {{max_attempts: 1}}, params: {{method: GET, url: "{receiver.url}/fail"}}}}
  - {{id: done, type: end}}
edges:
  - {{from: call, to: done}}
"""


def test_failing_and_timing_out_executions_alert_and_a_succeeding_one_does_not(
    shared_worker: WorkerProcess, receiver: Receiver
) -> None:
    dept = unique("support")
    deploy(shared_worker, department(dept, receiver))
    broken, sleepy, fine, listener = (unique(n) for n in ("broken", "sleepy", "fine", "listener"))
    deploy(shared_worker, failing(broken, dept, receiver))
    deploy(
        shared_worker,
        f"""
id: {sleepy}
department: {dept}
settings: {{timeout: 300ms}}
nodes:
  - {{id: call, type: http, params: {{method: GET, url: "{receiver.url}/slow"}}}}
  - {{id: done, type: end}}
edges:
  - {{from: call, to: done}}
""",
    )
    deploy(
        shared_worker,
        f"""
id: {fine}
department: {dept}
nodes:
  - {{id: done, type: end, params: {{output: {{ok: true}}}}}}
edges: []
""",
    )
    deploy(
        shared_worker,
        f"""
id: {listener}
department: {dept}
triggers:
  - event: {{types: [braidflow.department.alert]}}
nodes:
  - id: report
    type: http
    params:
      method: POST
      url: "{receiver.url}/seen"
      body: {{execution: "${{event.data.execution_id}}", status: "${{event.data.status}}", department: "${{event.department}}"}}
  - {{id: done, type: end}}
edges:
  - {{from: report, to: done}}
""",
    )
    succeeded = shared_worker.api.start(fine, {})
    assert shared_worker.wait_until_finished([succeeded])[succeeded]["status"] == "completed"
    failed = shared_worker.api.start(broken, {})
    timed_out = shared_worker.api.start(sleepy, {})
    views = shared_worker.wait_until_finished([failed, timed_out])
    assert {views[e]["status"] for e in (failed, timed_out)} == {"failed"}, views

    alerts = until(
        lambda: (found := receiver.alerts_of(dept)) and len(found) >= 2 and found,
        what="two alerts at the department's webhook",
    )
    by_execution = {a["data"]["execution_id"]: a for a in alerts}
    assert set(by_execution) == {failed, timed_out}, alerts
    first = by_execution[failed]
    assert first["type"] == "braidflow.department.alert"
    assert first["specversion"] == "1.0" and first["department"] == dept
    assert first["data"] == {
        "department": dept,
        "tenant": "default",
        "workflow": broken,
        "workflow_version": 1,
        "execution_id": failed,
        "status": "failed",
        "error": first["data"]["error"],
        "node": "call",
    }
    assert first["data"]["error"]["type"] == "http.5xx", first
    late = by_execution[timed_out]["data"]
    assert (late["status"], late["workflow"], late["node"]) == ("timed_out", sleepy, None)
    assert late["error"]["type"] == "Timeout"
    assert all(t.startswith("application/cloudevents+json") for t in receiver.content_types)

    # The alerts on the event bus start the workflow subscribed to them.
    reported = until(
        lambda: (
            (found := [s for s in receiver.seen if s["execution"] in (failed, timed_out)])
            and len(found) >= 2
            and found
        ),
        what="the subscribed workflow reporting both alerts",
    )
    assert {(r["execution"], r["status"], r["department"]) for r in reported} == {
        (failed, "failed", dept),
        (timed_out, "timed_out", dept),
    }
    # Both alerts came after the succeeding execution ended; it made none.
    assert succeeded not in {a["data"]["execution_id"] for a in receiver.alerts_of(dept)}
    assert succeeded not in {s["execution"] for s in receiver.seen}


def test_an_alert_whose_webhook_refuses_survives_a_sigkill(
    broker: SuiteBroker, prefix: str, tmp_path: Path, receiver: Receiver
) -> None:
    """Its webhook's URL names a secret, too: sent resolved, never logged."""
    dept = unique("ops")
    workflow = unique("broken")
    with receiver.lock:
        receiver.refusing.add(dept)
    worker = WorkerProcess(
        broker,
        prefix,
        tmp_path / "data",
        tmp_path / "worker.log",
        env={"BRAIDFLOW_SECRET_HOOK_TOKEN": HOOK_TOKEN},
    )
    try:
        worker.start().wait_ready()
        deploy(
            worker,
            f"""
kind: Department
name: {dept}
credentials: [HOOK_TOKEN]
settings:
  alert_channels:
    - {{webhook: "{receiver.url}/alerts/{dept}?token=${{secrets.HOOK_TOKEN}}"}}
""",
        )
        deploy(worker, failing(workflow, dept, receiver))
        failed = worker.api.start(workflow, {})
        assert worker.wait_until_finished([failed])[failed]["status"] == "failed"
        until(lambda: receiver.refused.get(dept), what="the webhook refusing the alert")
        worker.kill()
        with receiver.lock:
            receiver.refusing.discard(dept)
        worker.start().wait_ready()
        alerts = until(lambda: receiver.alerts_of(dept), what="the alert after the restart")
        assert {a["data"]["execution_id"] for a in alerts} == {failed}
        assert {a["data"]["status"] for a in alerts} == {"failed"}
        assert set(receiver.tokens) == {HOOK_TOKEN}
    finally:
        worker.stop()
    assert HOOK_TOKEN not in worker.log_path.read_text(errors="replace")


def test_a_refusing_webhook_is_tried_a_bounded_number_of_times_then_counted(
    shared_worker: WorkerProcess, receiver: Receiver
) -> None:
    dept = unique("billing")
    dead_end = f"{dept}-dead"
    workflow = unique("broken")
    with receiver.lock:
        receiver.refusing.add(dead_end)
    deploy(
        shared_worker,
        f"""
kind: Department
name: {dept}
settings:
  alert_channels:
    - {{webhook: "{receiver.url}/alerts/{dead_end}"}}
    - {{webhook: "{receiver.url}/alerts/{dept}"}}
""",
    )
    deploy(shared_worker, failing(workflow, dept, receiver))
    failed = shared_worker.api.start(workflow, {})
    # The webhook that answers is not held up by the one that refuses.
    alerts = until(lambda: receiver.alerts_of(dept), what="the alert at the answering webhook")
    assert [a["data"]["execution_id"] for a in alerts] == [failed]
    line = (
        f'braidflow_department_alert_webhooks_total{{department="{dept}",outcome="given_up"}} 1.0'
    )
    until(
        lambda: line in shared_worker.api.get("/metrics").body,
        what="the refused alert counted as given up",
    )
    assert receiver.refused[dead_end] == 5
    assert receiver.alerts_of(dead_end) == []
