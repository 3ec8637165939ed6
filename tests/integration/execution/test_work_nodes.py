"""Work nodes through the whole runtime: a task that raises, and http and fetch_page nodes against
a real server."""

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

PAGE = """
id: work-page
input:
  type: object
  required: [url]
  properties:
    url: {type: string}
nodes:
  - id: read
    type: fetch_page
    params:
      url: "${input.url}"
      headers: {X-Reader: braidflow}
      select:
        headline: h1
        price: {css: "#price", attr: data-amount}
        links: {css: "ul.docs a", attr: href, all: true}
        missing: ".no-such-thing"
  - id: done
    type: end
    params: {output: "${nodes.read.output}"}
edges:
  - {from: read, to: done}
"""

PAGES = """
id: work-pages
input:
  type: object
  required: [urls]
  properties:
    urls: {type: array, items: {type: string}}
nodes:
  - id: each
    type: foreach
    params:
      items: "${input.urls}"
      do:
        type: fetch_page
        params:
          url: "${item}"
          headers: {X-Reader: braidflow}
          select: {headline: h1}
  - id: done
    type: end
    params: {output: {pages: "${nodes.each.output}"}}
edges:
  - {from: each, to: done}
"""

RELEASE_PAGE = """<!doctype html><html><head><title> Release  4.2 </title></head><body>
<h1>Braidflow   <em>4.2</em> is out</h1>
<p id="price" data-amount="0">free</p>
<ul class="docs"><li><a href="/install">Install</a></li><li><a href="/format">Format</a></li></ul>
</body></html>"""

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

    async def page(request: web.Request) -> web.Response:
        if request.headers.get("X-Reader") != "braidflow":
            return web.Response(status=403, text="readers only")
        return web.Response(text=RELEASE_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    port = free_port()
    runner = background_loop.serve(app, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup(), timeout_s=SLOW_S + 10)


@pytest.fixture(scope="module")
def worker(shared_worker: WorkerProcess) -> WorkerProcess:
    for definition in (FAILING, CALL, PAGE, PAGES):
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


def test_a_fetch_page_node_picks_the_selected_fields(worker: WorkerProcess, server: str) -> None:
    execution_id = worker.api.start("work-page", {"url": f"{server}/page"})
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "completed", execution
    assert execution["output"] == {
        "status": 200,
        "title": "Release 4.2",
        "fields": {
            "headline": "Braidflow 4.2 is out",
            "price": "0",
            "links": ["/install", "/format"],
            "missing": None,
        },
    }


def test_a_fetch_page_node_answered_with_a_5xx_fails_as_an_http_node_does(
    worker: WorkerProcess, server: str
) -> None:
    execution_id = worker.api.start("work-page", {"url": f"{server}/broken"})
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "failed", execution
    assert (execution["error"]["type"], execution["error"]["node_id"]) == ("http.5xx", "read")


def test_a_fetch_page_node_with_a_broken_selector_is_refused_at_deploy(
    worker: WorkerProcess,
) -> None:
    broken = PAGE.replace("id: work-page", "id: work-page-broken").replace(
        "headline: h1", 'headline: "h1[["'
    )
    reply = worker.api.deploy(broken)
    assert reply.status == 400, reply
    assert "node 'read': params.select.headline: 'h1[[' is not a CSS selector" in str(reply.body)


def test_a_foreach_runs_a_fetch_page_node_per_item(worker: WorkerProcess, server: str) -> None:
    urls = [f"{server}/page", f"{server}/page?again=1"]
    execution_id = worker.api.start("work-pages", {"urls": urls})
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert execution["status"] == "completed", execution["error"]
    assert [page["fields"]["headline"] for page in execution["output"]["pages"]] == [
        "Braidflow 4.2 is out"
    ] * 2
