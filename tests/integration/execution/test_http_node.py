"""http nodes against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from braidflow.connectors.broker import free_port
from braidflow.connectors.http import HttpNodeClient
from braidflow.tasks import NodeFailure


class Seen:
    """What the server received, for the assertions."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
async def seen() -> Seen:
    return Seen()


@pytest.fixture
async def server(seen: Seen) -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.Response:
        seen.requests.append(
            {
                "method": request.method,
                "headers": dict(request.headers),
                "query": list(request.query.items()),
                "content_type": request.content_type,
                "body": await request.text(),
            }
        )
        return web.json_response({"ok": True, "employee": "ada"}, headers={"X-Trace": "t1"})

    async def text(_: web.Request) -> web.Response:
        return web.Response(text="plain words")

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"status {code} because reasons")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def bad_json(_: web.Request) -> web.Response:
        return web.Response(text="{not json", content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/text", text)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/slow", slow)
    app.router.add_get("/bad-json", bad_json)
    async with TestServer(app, host="127.0.0.1") as running:
        yield str(running.make_url("")).rstrip("/")


@pytest.fixture
async def client() -> AsyncIterator[HttpNodeClient]:
    http = HttpNodeClient()
    await http.start()
    yield http
    await http.stop()


def params(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "method": "GET",
        "url": url,
        "headers": {},
        "query": {},
        "body": None,
        "expect_status": None,
    } | extra


async def test_a_json_answer_is_decoded(server: str, client: HttpNodeClient) -> None:
    output = await client.call(params(f"{server}/echo"), 5_000, "e1:it:1")
    assert output["status"] == 200
    assert output["body"] == {"ok": True, "employee": "ada"}
    assert output["headers"]["x-trace"] == "t1"
    assert output["headers"]["content-type"].startswith("application/json")


async def test_a_text_answer_stays_text(server: str, client: HttpNodeClient) -> None:
    output = await client.call(params(f"{server}/text"), 5_000, "e1:it:1")
    assert output["body"] == "plain words"


async def test_the_node_runs_span_goes_out_as_traceparent_unless_the_node_sets_one(
    server: str, client: HttpNodeClient, seen: Seen
) -> None:
    span = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    await client.call(params(f"{server}/echo"), 5_000, "e1:it:1", span)
    own = "00-11111111111111111111111111111111-2222222222222222-01"
    await client.call(params(f"{server}/echo", headers={"traceparent": own}), 5_000, "k", span)
    await client.call(params(f"{server}/echo"), 5_000, "e1:it:1")
    sent = [{k.lower(): v for k, v in r["headers"].items()} for r in seen.requests]
    assert [h.get("traceparent") for h in sent] == [span, own, None]


async def test_the_idempotency_key_headers_and_query_are_sent(
    server: str, client: HttpNodeClient, seen: Seen
) -> None:
    await client.call(
        params(
            f"{server}/echo",
            headers={"X-Tenant": "acme", "X-Count": 3},
            query={"employee": "ada", "tag": ["a", "b"], "urgent": True},
        ),
        5_000,
        "e1:it:1",
    )
    [request] = seen.requests
    assert request["headers"]["Idempotency-Key"] == "e1:it:1"
    assert request["headers"]["X-Tenant"] == "acme"
    assert request["headers"]["X-Count"] == "3"
    assert request["query"] == [("employee", "ada"), ("tag", "a"), ("tag", "b"), ("urgent", "true")]


async def test_an_object_body_goes_as_json_and_a_string_as_text(
    server: str, client: HttpNodeClient, seen: Seen
) -> None:
    await client.call(params(f"{server}/echo", method="POST", body={"employee": "ada"}), None, "k1")
    await client.call(params(f"{server}/echo", method="POST", body="hello"), None, "k2")
    as_json, as_text = seen.requests
    assert (as_json["content_type"], as_json["body"]) == ("application/json", '{"employee": "ada"}')
    assert (as_text["content_type"], as_text["body"]) == ("text/plain", "hello")


async def test_a_non_2xx_answer_fails_naming_the_status(
    server: str, client: HttpNodeClient
) -> None:
    with pytest.raises(NodeFailure) as failed:
        await client.call(params(f"{server}/status/503"), 5_000, "k")
    assert failed.value.type == "http.5xx"
    assert "GET" in failed.value.message and "/status/503" in failed.value.message
    assert "answered 503" in failed.value.message
    assert "because reasons" in failed.value.message


async def test_expect_status_decides_what_succeeds(server: str, client: HttpNodeClient) -> None:
    output = await client.call(params(f"{server}/status/404", expect_status=[200, 404]), None, "k")
    assert output["status"] == 404
    with pytest.raises(NodeFailure, match=r"answered 200 \(expected 201\)") as failed:
        await client.call(params(f"{server}/text", expect_status=201), None, "k")
    assert failed.value.type == "http.2xx"


async def test_a_slow_server_fails_with_a_timeout(server: str, client: HttpNodeClient) -> None:
    with pytest.raises(NodeFailure, match="after 200ms") as failed:
        await client.call(params(f"{server}/slow"), 200, "k")
    assert failed.value.type == "TimeoutError"


async def test_a_refused_connection_fails_with_the_aiohttp_error(client: HttpNodeClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/nobody"
    with pytest.raises(NodeFailure) as failed:
        await client.call(params(url), 2_000, "k")
    assert failed.value.type.startswith("ClientConnector")
    assert url in failed.value.message


async def test_a_json_answer_that_is_not_json_fails(server: str, client: HttpNodeClient) -> None:
    with pytest.raises(NodeFailure, match="says it is JSON but is not") as failed:
        await client.call(params(f"{server}/bad-json"), None, "k")
    assert failed.value.type == "InvalidResponse"
