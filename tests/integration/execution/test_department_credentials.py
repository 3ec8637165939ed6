"""A department's credentials against a real worker and a real http server on 127.0.0.1: a
workflow of the department sends the secret it lists (the server receives the header); one it
does not list fails the node naming the secret and the department; a workflow of no
department may use a secret no department lists, and not one a department does (a department
deploy that takes one away says so)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from background_loop import BackgroundLoop
from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.connectors.broker import free_port

HELPDESK = "hd-7f3e91c2a4"
DB = "db-0b6d2e58f1"


@pytest.fixture(scope="module")
def echo(background_loop: BackgroundLoop) -> Iterator[tuple[str, list[str]]]:
    """A server recording the Authorization header of every request; its URL and the list."""
    port = free_port()
    received: list[str] = []
    lock = threading.Lock()

    async def record(request: web.Request) -> web.Response:
        with lock:
            received.append(request.headers.get("Authorization", ""))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/echo", record)
    runner = background_loop.serve(app, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/echo", received
    background_loop.run(runner.cleanup())


@pytest.fixture(scope="module")
def worker(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    home = tmp_path_factory.mktemp("credentials-worker")
    process = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        home / "data",
        home / "worker.log",
        env={"BRAIDFLOW_SECRET_HELPDESK": HELPDESK, "BRAIDFLOW_SECRET_DB": DB},
    )
    try:
        yield process.start().wait_ready()
    finally:
        process.stop()


def calling(workflow: str, department: str | None, secret: str, url: str) -> str:
    belongs = f"department: {department}\n" if department else ""
    return f"""
id: {workflow}
{belongs}nodes:
  - id: call
    type: http
    retry: {{max_attempts: 1}}
    params: {{method: GET, url: "{url}", headers: {{Authorization: "Bearer ${{secrets.{secret}}}"}}}}
  - {{id: done, type: end}}
edges:
  - {{from: call, to: done}}
"""


def run(worker: WorkerProcess, text: str, workflow: str) -> tuple[dict[str, Any], list[str]]:
    """Deploy, start and finish one execution: its view and the deploy's warnings."""
    deployed = worker.api.deploy(text)
    assert deployed.status == 201, deployed
    execution = worker.api.start(workflow, {})
    return worker.wait_until_finished([execution])[execution], deployed.body.get("warnings", [])


def test_a_department_uses_the_credentials_it_lists_and_no_others(
    worker: WorkerProcess, echo: tuple[str, list[str]]
) -> None:
    url, received = echo
    dept = f"support{uuid.uuid4().hex[:6]}"
    reply = worker.api.deploy(f"kind: Department\nname: {dept}\ncredentials: [HELPDESK]\n")
    assert reply.status == 201, reply

    listed, warnings = run(worker, calling("listed", dept, "HELPDESK", url), "listed")
    assert listed["status"] == "completed", listed
    assert warnings == []
    assert received == [f"Bearer {HELPDESK}"]

    unlisted, warnings = run(worker, calling("unlisted", dept, "DB", url), "unlisted")
    assert unlisted["status"] == "failed", unlisted
    assert unlisted["error"]["type"] == "SecretNotAllowed", unlisted
    message = unlisted["error"]["message"]
    assert "'DB'" in message and f"department {dept!r}" in message, message
    assert [w for w in warnings if "'DB'" in w and dept in w], warnings

    stranger, warnings = run(worker, calling("stranger", None, "HELPDESK", url), "stranger")
    assert stranger["status"] == "failed", stranger
    assert stranger["error"]["type"] == "SecretNotAllowed"
    assert "'HELPDESK'" in stranger["error"]["message"] and dept in stranger["error"]["message"]
    assert [w for w in warnings if "'HELPDESK'" in w], warnings

    unclaimed, warnings = run(worker, calling("unclaimed", None, "DB", url), "unclaimed")
    assert unclaimed["status"] == "completed", unclaimed
    assert warnings == []
    # Only the two calls allowed reached the server; no value in any answer.
    assert received == [f"Bearer {HELPDESK}", f"Bearer {DB}"]
    for view in (listed, unlisted, stranger, unclaimed):
        assert HELPDESK not in str(view) and DB not in str(view)

    # A department that lists DB takes it from the workflow of no department: its deploy says
    # so, and the next execution fails.
    claiming = f"records{uuid.uuid4().hex[:6]}"
    reply = worker.api.deploy(f"kind: Department\nname: {claiming}\ncredentials: [DB]\n")
    assert reply.status == 201, reply
    assert [w for w in reply.body["warnings"] if "'unclaimed'" in w and "'DB'" in w], reply
    execution = worker.api.start("unclaimed", {})
    again = worker.wait_until_finished([execution])[execution]
    assert again["status"] == "failed" and again["error"]["type"] == "SecretNotAllowed", again
    assert claiming in again["error"]["message"]
    assert received == [f"Bearer {HELPDESK}", f"Bearer {DB}"]
