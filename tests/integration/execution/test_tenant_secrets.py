"""Secrets of another tenant against a real worker and a real http server on 127.0.0.1: a
workflow of tenant `acme` sends `${secrets.token}` from `<dir>/tenants/acme/token` (and one
from its `BRAIDFLOW_TENANT_SECRET_ACME__<NAME>` variable), the default tenant's workflow of
the same id and secret name sends the default tenant's `<dir>/token`, and acme cannot read a
secret only the default tenant has; an acme department's alert webhook gets acme's secret."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from background_loop import BackgroundLoop
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerApi, WorkerProcess, make_key, wait_for_terminal

from braidflow.access import Role
from braidflow.connectors.broker import free_port

DEFAULT_TOKEN = "dflt-5c1e9a7b03"
ACME_TOKEN = "acme-8d42f6b1e9"
ACME_ENV = "acme-env-2b7c90d4"
DEFAULT_ONLY = "only-dflt-e03a6f"
DEFAULT_HOOK = "dflt-hook-71c3b5"
ACME_HOOK = "acme-hook-a94d2e"


@pytest.fixture(scope="module")
def echo(background_loop: BackgroundLoop) -> Iterator[tuple[str, list[str]]]:
    """A server recording the Authorization header of every GET /echo and the `token` of
    every POST /alerts, in one list; `/fail` always fails. Its URL and the list."""
    port = free_port()
    received: list[str] = []
    lock = threading.Lock()

    async def record(request: web.Request) -> web.Response:
        with lock:
            received.append(request.headers.get("Authorization", ""))
        return web.json_response({"ok": True})

    async def alert(request: web.Request) -> web.Response:
        with lock:
            received.append(f"alert {request.query.get('token', '')}")
        return web.Response(status=204)

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    app = web.Application()
    app.router.add_get("/echo", record)
    app.router.add_post("/alerts", alert)
    app.router.add_get("/fail", fail)
    runner = background_loop.serve(app, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}", received
    background_loop.run(runner.cleanup())


@pytest.fixture(scope="module")
def worker(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    home = tmp_path_factory.mktemp("tenant-secrets-worker")
    secrets = home / "secrets"
    (secrets / "tenants" / "acme").mkdir(parents=True)
    (secrets / "token").write_text(DEFAULT_TOKEN + "\n")
    (secrets / "default_only").write_text(DEFAULT_ONLY + "\n")
    (secrets / "hook").write_text(DEFAULT_HOOK + "\n")
    (secrets / "tenants" / "acme" / "token").write_text(ACME_TOKEN + "\n")
    (secrets / "tenants" / "acme" / "hook").write_text(ACME_HOOK + "\n")
    process = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        home / "data",
        home / "worker.log",
        env={
            "BRAIDFLOW_SECRETS_DIR": str(secrets),
            "BRAIDFLOW_TENANT_SECRET_ACME__from_env": ACME_ENV,
        },
    )
    try:
        yield process.start().wait_ready()
    finally:
        process.stop()


def calling(workflow: str, secret: str, url: str) -> str:
    return f"""
id: {workflow}
nodes:
  - id: call
    type: http
    retry: {{max_attempts: 1}}
    params: {{method: GET, url: "{url}/echo", headers: {{Authorization: "Bearer ${{secrets.{secret}}}"}}}}
  - {{id: done, type: end}}
edges:
  - {{from: call, to: done}}
"""


def run(worker: WorkerProcess, api: WorkerApi, text: str, workflow: str) -> dict[str, Any]:
    """Deploy and start `workflow` through `api` (its tenant), and wait for it to end."""
    deployed = api.deploy(text)
    assert deployed.status == 201, deployed
    execution = api.start(workflow, {})
    return wait_for_terminal(api, [execution], 30.0, [worker])[execution]


def test_each_tenant_sends_its_own_secret_of_one_name_and_acme_none_of_the_defaults(
    worker: WorkerProcess, echo: tuple[str, list[str]]
) -> None:
    url, received = echo
    acme = worker.api.with_key(
        make_key(worker.broker, worker.prefix, Role.OWNER, "acme-owner", tenant="acme")
    )
    default = worker.api

    def calls() -> list[str]:
        return [r for r in received if r.startswith("Bearer ")]

    ours = run(worker, acme, calling("call-token", "token", url), "call-token")
    assert ours["status"] == "completed", ours
    assert calls() == [f"Bearer {ACME_TOKEN}"]

    theirs = run(worker, default, calling("call-token", "token", url), "call-token")
    assert theirs["status"] == "completed", theirs
    assert calls() == [f"Bearer {ACME_TOKEN}", f"Bearer {DEFAULT_TOKEN}"]

    from_env = run(worker, acme, calling("call-env", "from_env", url), "call-env")
    assert from_env["status"] == "completed", from_env
    assert calls()[2:] == [f"Bearer {ACME_ENV}"]

    # A secret only the default tenant has is not acme's: the node fails, naming where
    # acme's would be, and nothing reaches the server.
    refused = run(
        worker, acme, calling("call-default-only", "default_only", url), "call-default-only"
    )
    assert refused["status"] == "failed", refused
    assert refused["error"]["type"] == "SecretNotFound", refused
    message = refused["error"]["message"]
    assert "'default_only'" in message and "tenant 'acme'" in message, message
    assert "BRAIDFLOW_TENANT_SECRET_ACME__default_only" in message, message
    assert "tenants/acme/default_only" in message, message
    assert len(calls()) == 3
    for view in (ours, theirs, from_env, refused):
        leaked = [v for v in (ACME_TOKEN, DEFAULT_TOKEN, ACME_ENV, DEFAULT_ONLY) if v in str(view)]
        assert leaked == [], view


def test_an_alert_webhook_of_an_acme_department_is_sent_acmes_secret(
    worker: WorkerProcess, echo: tuple[str, list[str]]
) -> None:
    url, received = echo
    acme = worker.api.with_key(
        make_key(worker.broker, worker.prefix, Role.OWNER, "acme-alerts", tenant="acme")
    )
    dept = f"ops{uuid.uuid4().hex[:6]}"
    department = f"""
kind: Department
name: {dept}
credentials: [hook]
settings:
  alert_channels:
    - {{webhook: "{url}/alerts?token=${{secrets.hook}}"}}
"""
    assert acme.deploy(department).status == 201
    failing = f"""
id: broken
department: {dept}
nodes:
  - {{id: call, type: http, retry: {{max_attempts: 1}}, params: {{method: GET, url: "{url}/fail"}}}}
  - {{id: done, type: end}}
edges:
  - {{from: call, to: done}}
"""
    assert run(worker, acme, failing, "broken")["status"] == "failed"
    alerts = until(
        lambda: [r for r in list(received) if r.startswith("alert ")], "acme's alert", 60.0
    )
    assert alerts == [f"alert {ACME_HOOK}"]
    assert ACME_HOOK not in worker.log_path.read_text(errors="replace")
