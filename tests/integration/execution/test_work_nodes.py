"""Work nodes through the whole runtime: a task that raises, and http nodes against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp import web
from background_loop import BackgroundLoop
from workers import WorkerProcess

from braidflow.connectors.broker import free_port

FAILING = """
id: work-fails
nodes:
  - {id: explode, type: task, params: {handler: test.boom, input: "disk on fire"}}
  - {id: done, type: end, params: {output: {never: true}}}
edges:
  - {from: explode, to: done}
"""

CALL = """
id: work-http
input:
  type: object
  required: [url]
  properties:
    url: {type: string}
nodes:
  - id: call
    type: http
    params: {method: GET, url: "${input.url}"}
    timeout: 300ms
  - id: done
    type: end
    params:
      output: {status: "${nodes.call.output.status}", body: "${nodes.call.output.body}"}
edges:
  - {from: call, to: done}
"""

SLOW_S = 1.5  # well past the node's 300ms


@pytest.fixture(scope="module")
def server(background_loop: BackgroundLoop) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 for the http nodes to call; its base URL."""

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"answer": 42, "key": request.headers.get("Idempotency-Key")})

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_S)
        return web.json_response({"late": True})

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    port = free_port()
    runner = background_loop.serve(app, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup(), timeout_s=SLOW_S + 10)


@pytest.fixture(scope="module")
def worker(shared_worker: WorkerProcess) -> WorkerProcess:
    for definition in (FAILING, CALL):
        reply = shared_worker.api.deploy(definition)
        assert reply.status == 201, reply
    return shared_worker


def test_a_task_that_raises_fails_the_node_and_the_execution(worker: WorkerProcess) -> None:
    execution_id = worker.api.start("work-fails", None)
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "failed", execution
    error = {"type": "ValueError", "message": "boom: disk on fire", "node_id": "explode"}
    assert execution["error"] == error
    nodes = {n["node_id"]: n for n in execution["nodes"]}
    assert nodes["explode"]["status"] == "failed"
    assert nodes["explode"]["error"] == error
    assert "done" not in nodes
    assert execution["output"] is None


def test_an_http_node_answers_with_the_decoded_body(worker: WorkerProcess, server: str) -> None:
    execution_id = worker.api.start("work-http", {"url": f"{server}/ok"})
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "completed", execution
    # The idempotency key is (execution, node, attempt): stable across a crash and a rerun.
    expected_body = {"answer": 42, "key": f"{execution_id}:call:1"}
    assert execution["output"] == {"status": 200, "body": expected_body}
    [call] = [n for n in execution["nodes"] if n["node_id"] == "call"]
    assert call["output"]["headers"]["content-type"].startswith("application/json")


def test_an_http_node_answered_with_a_5xx_fails_the_execution(
    worker: WorkerProcess, server: str
) -> None:
    execution_id = worker.api.start("work-http", {"url": f"{server}/broken"})
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "failed", execution
    error = execution["error"]
    assert (error["type"], error["node_id"]) == ("http.5xx", "call")
    assert "answered 503" in error["message"] and "down for maintenance" in error["message"]


def test_an_http_node_past_its_timeout_fails_with_a_timeout(
    worker: WorkerProcess, server: str
) -> None:
    execution_id = worker.api.start("work-http", {"url": f"{server}/slow"})
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "failed", execution
    error = execution["error"]
    # Two deadlines of the same length race: the HTTP client's own (TimeoutError) and
    # the engine's durable attempt timer (Timeout); either failing the node is right.
    assert (error["type"], error["node_id"]) in {("TimeoutError", "call"), ("Timeout", "call")}
    assert "300ms" in error["message"] or "300 ms" in error["message"], error
    [call] = [n for n in execution["nodes"] if n["node_id"] == "call"]
    # Failed at the deadline, not when the server finally answered.
    assert call["duration_ms"] < SLOW_S * 1000, call
