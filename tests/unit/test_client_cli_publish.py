"""`braidflow publish`: a CloudEvent posted to the API, against a real HTTP server that imitates it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import click
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from braidflow.client_cli import COMMANDS
from braidflow.connectors.broker import free_port
from braidflow.schemas.cloudevents import CloudEventError, from_structured, is_rfc3339, topic_for

EVENTS_PREFIX = "braidflow.events."


@dataclass
class EventsRoute:
    """`POST /api/v1/events` as the worker answers it; remembers what it was sent."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.content_types.append(request.headers.get("Content-Type", ""))
        raw = await request.read()
        try:
            event = from_structured(raw)
            if event.type.startswith("refused."):
                raise CloudEventError("type", "no topic takes refused events")
            topic = topic_for(event.type, EVENTS_PREFIX)
        except CloudEventError as exc:
            body = (
                {"error": str(exc)}
                if exc.field is None
                else {"error": str(exc), "field": exc.field}
            )
            return web.json_response(body, status=400)
        self.received.append(json.loads(raw))
        return web.json_response({"id": event.id, "type": event.type, "topic": topic}, status=202)


@pytest.fixture
async def route() -> AsyncIterator[EventsRoute]:
    route = EventsRoute()
    app = web.Application()
    app.router.add_post("/api/v1/events", route.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    route.url = f"http://127.0.0.1:{port}"
    yield route
    await runner.cleanup()


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("braidflow")
    for command in COMMANDS:
        group.add_command(command)
    return group


def api_arg(route: EventsRoute) -> str:
    return f"--api={route.url}"


async def invoke(cli: click.Group, *args: str) -> Result:
    """Run the command in a thread: its blocking request needs this loop free to answer."""
    return await asyncio.to_thread(CliRunner().invoke, cli, ["publish", *args])


async def test_publish_posts_a_structured_cloudevent_and_prints_where_it_went(
    cli: click.Group, route: EventsRoute
) -> None:
    result = await invoke(
        cli,
        "ticket.resolved",
        "--data",
        '{"ticket": 42, "priority": "high"}',
        "--subject",
        "ticket-42",
        "--source",
        "/helpdesk",
        "--department",
        "support",
        "--api",
        route.url,
    )
    assert result.exit_code == 0, result.output
    [sent] = route.received
    assert result.stdout == f"published {sent['id']} to braidflow.events.ticket\n"
    assert route.content_types == ["application/cloudevents+json; charset=utf-8"]
    assert is_rfc3339(sent.pop("time"))
    assert sent == {
        "specversion": "1.0",
        "id": sent["id"],
        "source": "/helpdesk",
        "type": "ticket.resolved",
        "subject": "ticket-42",
        "datacontenttype": "application/json",
        "department": "support",
        "data": {"ticket": 42, "priority": "high"},
    }


async def test_publish_without_data_sends_an_event_from_the_cli_source(
    cli: click.Group, route: EventsRoute
) -> None:
    result = await invoke(cli, "deploy.finished", api_arg(route))
    assert result.exit_code == 0, result.output
    [sent] = route.received
    assert sent["source"] == "/braidflow/cli"
    assert "data" not in sent
    assert "subject" not in sent
    assert result.stdout.endswith(" to braidflow.events.deploy\n")


async def test_an_event_the_api_refuses_is_one_line_naming_the_field(
    cli: click.Group, route: EventsRoute
) -> None:
    result = await invoke(cli, "bad type.x", api_arg(route))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: type: 'bad type', the first segment of 'bad type.x'")
    assert len(result.stderr.splitlines()) == 1
    assert route.received == []


async def test_a_refusal_whose_message_omits_the_field_gets_it_prefixed(
    cli: click.Group, route: EventsRoute
) -> None:
    result = await invoke(cli, "refused.x", api_arg(route))
    assert result.exit_code == 1
    assert result.stderr == "error: type: no topic takes refused events\n"


async def test_an_event_invalid_here_is_not_sent(cli: click.Group, route: EventsRoute) -> None:
    result = await invoke(cli, "ticket.resolved", "--subject", "", api_arg(route))
    assert result.exit_code == 1
    assert result.stderr == "error: subject: must not be empty\n"
    assert route.content_types == []


async def test_data_that_is_not_json_is_a_usage_error(cli: click.Group, route: EventsRoute) -> None:
    result = await invoke(cli, "ticket.resolved", "--data", "{ticket:", api_arg(route))
    assert result.exit_code == 2
    assert "not JSON" in result.stderr
    assert route.content_types == []


async def test_an_api_without_the_events_route_is_named(cli: click.Group) -> None:
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        result = await invoke(cli, "ticket.resolved", f"--api=127.0.0.1:{port}")
    finally:
        await runner.cleanup()
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no events route at http://127.0.0.1:{port}/api/v1/events:"
        " is that a braidflow worker of this version?\n"
    )


async def test_a_refused_connection_is_one_line(cli: click.Group) -> None:
    api = f"http://127.0.0.1:{free_port()}"
    result = await invoke(cli, "ticket.resolved", "--api", api)
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot reach the braidflow API at {api}: Connection refused\n"
