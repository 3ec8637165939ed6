"""The executor resolves secrets at the moment of the call and takes their values out of what the
call produced: an http node's output and errors, a handler's output and exceptions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaProducer
from confluent_kafka.admin import AdminClient, NewTopic
from suite_broker import SuiteBroker

from braidflow.access import DEFAULT_TENANT
from braidflow.config import Settings
from braidflow.connectors.http import HttpNodeClient
from braidflow.engine.messages import NodeCompleted, NodeFailed, TaskRequest, Transition
from braidflow.schemas import encode_task
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.secrets import credentials_allowed
from braidflow.streams.executor import Executor
from braidflow.tasks import TaskContext, TaskRegistry

WAIT_S = 30.0
NOW = 1_700_000_000_000
TOKEN = "tok-3f9a/7c+e1"  # a `/` and a `+`: URL-quoted in an error message quoting the URL
OTHER = "other-b2d41e"


class Vault:
    """A secrets provider of the test's own, through the Protocol alone."""

    def __init__(self) -> None:
        self.values = {"CRM_TOKEN": TOKEN, "OTHER": OTHER}
        self.asked: list[tuple[str, str]] = []

    def secret(self, tenant: str, name: str) -> str | None:
        self.asked.append((tenant, name))
        return self.values.get(name)

    def describe(self, tenant: str, name: str) -> str:
        return f"the test's vault at {tenant}/{name}"


@pytest.fixture
def settings(broker: SuiteBroker, prefix: str) -> Settings:
    settings = Settings(kafka=broker.connection, prefix=prefix, partitions=1).for_dev()
    admin = AdminClient(broker.confluent())
    for future in admin.create_topics([NewTopic(settings.topics.tasks, 1, 1)]).values():
        future.result(timeout=10)
    return settings


def http_request(execution_id: str, params: dict[str, Any]) -> TaskRequest:
    full = {"method": "GET", "headers": {}, "query": {}, "body": None, "expect_status": None}
    return task_request(execution_id, kind="http", input=full | params, handler=None)


def task_request(execution_id: str, **fields: Any) -> TaskRequest:
    values: dict[str, Any] = {
        "execution_id": execution_id,
        "workflow_id": "wf",
        "node_id": "work",
        "kind": "task",
        "attempt": 1,
        "idempotency_key": f"{execution_id}:work:1",
        "at": NOW,
        "department": "support",
    }
    return TaskRequest(**(values | fields))


async def test_secrets_are_resolved_at_the_call_and_never_come_back(
    settings: Settings, producer: AIOKafkaProducer
) -> None:
    seen: list[dict[str, str]] = []

    async def echo(request: web.Request) -> web.Response:
        # A server that checks the credential and echoes it back, in a header and the body.
        seen.append(
            {
                "auth": request.headers.get("Authorization", ""),
                "query": request.query_string,
                "body": await request.text(),
            }
        )
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"refused": request.headers.get("Authorization")}, status=401)
        status = int(request.query.get("status", "200"))
        return web.json_response(
            {"you_sent": request.headers["Authorization"], "body": await request.text()},
            status=status,
            headers={"X-Echo": request.headers["Authorization"]},
        )

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    registry = TaskRegistry()

    @registry.task("reads.secret")
    async def reads(input: Any, context: TaskContext) -> Any:
        value = context.secrets["CRM_TOKEN"]
        return {
            "length": len(value),
            "leaked": f"token={value}",
            "missing": context.secrets.get("NOPE"),
        }

    @registry.task("raises.secret")
    def raises(input: Any, context: TaskContext) -> Any:
        raise PermissionError(f"the CRM refused {context.secrets['CRM_TOKEN']}")

    @registry.task("reads.other")
    async def reads_other(input: Any, context: TaskContext) -> Any:
        return context.secrets["OTHER"]

    results: list[Transition] = []

    async def send(
        transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        results.append(transition)

    async def dead_letter(dead: DeadLetter) -> None:
        raise AssertionError(f"no record here is poison: {dead}")

    vault = Vault()
    http = HttpNodeClient()
    await http.start()
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/echo"))
        auth = {"Authorization": "Bearer ${secrets.CRM_TOKEN}"}
        requests = [
            http_request(
                "ok",
                {"url": url, "headers": auth, "body": {"note": "$${secrets.CRM_TOKEN} costs 5$$"}},
            ),
            http_request("5xx", {"url": url + "?status=500", "headers": auth}),
            http_request("unknown", {"url": url, "headers": {"Authorization": "${secrets.NOPE}"}}),
            http_request("refused", {"url": url, "headers": {"X-Other": "${secrets.OTHER}"}}),
            http_request("down", {"url": "http://127.0.0.1:1/x?k=${secrets.CRM_TOKEN}"}),
            task_request("reads", handler="reads.secret"),
            task_request("raises", handler="raises.secret"),
            task_request("other", handler="reads.other"),
        ]
        for request in requests:
            await producer.send_and_wait(settings.topics.tasks, encode_task(request), key=b"k")
        executor = Executor(
            settings,
            registry,
            http,
            send,
            dead_letter,
            lambda: NOW,
            secrets=vault,
            # Department support lists CRM_TOKEN and NOPE (not set) only.
            allowed_secrets=lambda tenant, department: credentials_allowed(
                department, {"support": frozenset({"CRM_TOKEN", "NOPE"})}
            ),
        )
        await executor.start()
        try:
            deadline = time.monotonic() + WAIT_S
            while len(results) < len(requests):
                assert time.monotonic() < deadline, f"waited for {len(requests)} results: {results}"
                await asyncio.sleep(0.02)
        finally:
            await executor.stop(grace_s=0.5)
            await http.stop()

    by_execution = {t.execution_id: t for t in results}
    ok = by_execution["ok"]
    assert isinstance(ok, NodeCompleted), ok
    assert ok.output["status"] == 200
    assert ok.output["headers"]["x-echo"] == "Bearer [secrets.CRM_TOKEN]"
    assert ok.output["body"]["you_sent"] == "Bearer [secrets.CRM_TOKEN]"
    # Text of the request's data is sent as written: never read as a reference.
    [sent] = [s for s in seen if s["body"]]
    assert sent == {
        "auth": f"Bearer {TOKEN}",
        "query": "",
        "body": '{"note": "${secrets.CRM_TOKEN} costs 5$"}',
    }

    def failure(execution_id: str) -> tuple[str, str]:
        failed = by_execution[execution_id]
        assert isinstance(failed, NodeFailed), failed
        return failed.error.type, failed.error.message

    kind, message = failure("5xx")
    assert kind == "http.5xx" and "[secrets.CRM_TOKEN]" in message, message
    assert failure("unknown") == (
        "SecretNotFound",
        "secret 'NOPE' is not set for tenant 'default' (looked for: the test's vault at default/NOPE)",
    )
    assert failure("refused") == (
        "SecretNotAllowed",
        "secret 'OTHER' is not among the credentials department 'support' lists"
        " (it lists: 'CRM_TOKEN', 'NOPE')",
    )
    kind, message = failure("down")
    assert "?k=[secrets.CRM_TOKEN]" in message, message

    read = by_execution["reads"]
    assert isinstance(read, NodeCompleted)
    assert read.output == {
        "length": len(TOKEN),
        "leaked": "token=[secrets.CRM_TOKEN]",
        "missing": None,
    }
    assert failure("raises") == ("PermissionError", "the CRM refused [secrets.CRM_TOKEN]")
    assert failure("other")[0] == "SecretNotAllowed"

    assert {tenant for tenant, _ in vault.asked} == {DEFAULT_TENANT}
    assert "OTHER" not in {name for _, name in vault.asked}  # not allowed: never even looked up
    for transition in results:
        assert TOKEN not in repr(transition) and OTHER not in repr(transition)
