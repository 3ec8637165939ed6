"""`braidflow dev`: the embedded broker, a worker with the API, the examples deployed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from confluent_kafka.admin import NewTopic

from braidflow.config import Settings
from braidflow.connectors.broker import EmbeddedBroker, free_port
from braidflow.connectors.demo_services import DEMO_PORT, start_demo_services
from braidflow.streams.topics import ensure_topics, trigger_topics
from braidflow.streams.worker import Runtime, build_runtime
from braidflow.topology import DefinitionError, load_workflow

DEFAULT_BROKER_PORT = 9092
# How long "ready" waits for the event router to follow the examples' events topics.
ROUTER_WAIT_S = 15.0


def _sample_input(example: Path) -> Any:
    """The input an example suggests, from `<name>.input.json` beside it, else `{}`."""
    sample = example.with_suffix(".input.json")
    return json.loads(sample.read_text()) if sample.exists() else {}


def _example_files(examples: Path) -> list[Path]:
    return [p for p in sorted(examples.glob("*.yaml")) if not p.name.endswith(".answers.yaml")]


def _trigger_topics(settings: Settings, examples: Path) -> list[NewTopic]:
    """The events topics the examples' triggers name (an example that does not load is
    reported when it is deployed)."""
    workflows = []
    for path in _example_files(examples):
        with contextlib.suppress(DefinitionError):
            workflows.append(load_workflow(path.read_text()))
    return trigger_topics(settings, workflows)


def _deploy_examples(examples: Path, topics: list[NewTopic]) -> Any:
    async def deploy(runtime: Runtime) -> None:
        runner = await start_demo_services("127.0.0.1", DEMO_PORT)
        runtime.app.add_future(_keep(runner))
        deployed = []
        for path in _example_files(examples):
            try:
                deployment, _ = await runtime.catalog.deploy(path.read_text(), runtime.clock())
            except DefinitionError as exc:
                click.echo(f"skipped {path}: {exc}", err=True)
                continue
            deployed.append((deployment.workflow_id, path))
        # "Ready" once an event published to them starts its workflows at once.
        if not await runtime.router.following((t.topic for t in topics), ROUTER_WAIT_S):
            click.echo("the event router does not follow the events topics yet", err=True)
        api = runtime.settings.api_url
        click.echo(f"\nbraidflow is ready. API: {api}/api/v1  broker: {runtime.settings.broker}")
        click.echo(f"deployed: {', '.join(w for w, _ in deployed) or '(none)'}")
        if deployed:
            workflow_id, path = next(((w, p) for w, p in deployed if w == "fan-out"), deployed[0])
            body = json.dumps({"input": _sample_input(path)})
            click.echo("\ntry:")
            click.echo(
                f"  curl -s -X POST {api}/api/v1/workflows/{workflow_id}/executions"
                f" -H 'content-type: application/json' -d '{body}'"
            )
            click.echo(f"  curl -s {api}/api/v1/executions/<execution_id>")
            click.echo(
                f"  braidflow run {workflow_id} --input '{json.dumps(_sample_input(path))}' --wait"
            )
        if any(w == "ticket-escalation" for w, _ in deployed):
            opened = '{"ticket_id": "T-1", "priority": "high"}'
            click.echo("\na domain event starts ticket-escalation; its resolution ends it:")
            click.echo(f"  braidflow publish ticket.opened --data '{opened}'")
            click.echo(
                f"  curl -s -X POST {api}/api/v1/events -H 'content-type: application/json'"
                ' -d \'{"specversion": "1.0", "id": "evt-2", "source": "/helpdesk",'
                ' "type": "ticket.resolved", "data": {"ticket_id": "T-1", "by": "ada"}}\''
            )
            click.echo(f"  curl -s {api}/api/v1/workflows/ticket-escalation/executions")
            click.echo(
                f"  (any Kafka producer can publish too: CloudEvents on topic events.ticket"
                f" at {runtime.settings.broker})"
            )
        click.echo("\nCtrl-C stops everything.\n")

    return deploy


async def _keep(runner: Any) -> None:
    """Hold the demo services until the worker stops, then close them."""
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run_dev(settings: Settings, broker: str | None, examples: Path, loglevel: str) -> None:
    """Run dev mode until Ctrl-C; start an embedded broker unless `broker` is given."""
    with contextlib.ExitStack() as stack:
        if broker is None:
            port = DEFAULT_BROKER_PORT
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=0.2),
            ):
                port = free_port()
            embedded = stack.enter_context(EmbeddedBroker(port=port))
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="braidflow-")))
            # A fresh in-memory broker needs fresh local state: old RocksDB rows would
            # describe executions this broker never saw.
            settings = replace(settings, broker=embedded.address, data_dir=data_dir)
        else:
            settings = replace(settings, broker=broker)
        settings = settings.for_dev()
        # Created before the worker starts, the examples' events topics are in the event
        # router's first assignment: created after, they would take a metadata refresh and
        # a rebalance of its group.
        topics = _trigger_topics(settings, examples)
        ensure_topics(settings, topics)
        runtime = build_runtime(settings)
        runtime.on_ready.append(_deploy_examples(examples, topics))
        # Faust's worker ends with SystemExit; the broker must still be stopped after it.
        with contextlib.suppress(SystemExit):
            runtime.run(loglevel)
