"""`braidflow dev`: the embedded broker, a worker with the API, the examples deployed.

An example department is a directory of `examples/` holding `department.yaml` (the
`kind: Department` definition) beside its workflows: dev mode deploys the department
first, then its workflows, after the examples at the top level.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml
from confluent_kafka.admin import NewTopic

from braidflow.config import Settings, group_limit_problems
from braidflow.connectors.broker import EmbeddedBroker, bind_error, free_port
from braidflow.connectors.connections import ConnectionsError, load_connections
from braidflow.connectors.demo_services import (
    DEMO_HOST,
    DEMO_PORT,
    HELPDESK_TOKEN_ENV,
    demo_connections,
    pointed_at,
    start_demo_services,
)
from braidflow.dev_banner import cli_command, ready_banner
from braidflow.dev_key import dev_owner_key
from braidflow.kafka_connection import KafkaConnection
from braidflow.runtime import Runtime, build_runtime
from braidflow.streams.topics import create_topics, trigger_topics
from braidflow.topology import DefinitionError, load_workflow

DEFAULT_BROKER_PORT = 9092
# The local state of a session on the embedded broker is kept in memory, as the broker keeps
# its topics, when this has room: created on disk, its 28 RocksDB databases and 4 SQLite
# files took 1 - 2.5 s of the start to write and sync, for state that is thrown away when
# the session ends (docs/performance-history.md, "Dev mode ready").
MEMORY_DIR = Path("/dev/shm")
MEMORY_DIR_MIN_FREE = 1 << 30
# How long "ready" waits for the event router to follow the examples' events topics.
ROUTER_WAIT_S = 15.0


def _memory_dir() -> Path | None:
    """Where a session's local state goes: MEMORY_DIR when it is there with room to spare
    (a container's is often 64 MiB), else None, the system's temporary directory."""
    try:
        room = shutil.disk_usage(MEMORY_DIR).free
    except OSError:
        return None
    writable = os.access(MEMORY_DIR, os.W_OK | os.X_OK)
    return MEMORY_DIR if writable and room >= MEMORY_DIR_MIN_FREE else None


def _sample_input(example: Path) -> Any:
    """The input an example suggests, from `<name>.input.json` beside it, else `{}`."""
    sample = example.with_suffix(".input.json")
    return json.loads(sample.read_text()) if sample.exists() else {}


DEPARTMENT_FILE = "department.yaml"


def _definitions(directory: Path) -> list[Path]:
    return [p for p in sorted(directory.glob("*.yaml")) if not p.name.endswith(".answers.yaml")]


def _example_batches(examples: Path) -> list[list[Path]]:
    """What dev mode deploys, in batches deployed one after the other, the files of a batch
    at once: the top-level examples, then each example department (a directory with a
    department.yaml) before its workflows."""
    batches = [_definitions(examples)]
    for department in sorted(examples.glob(f"*/{DEPARTMENT_FILE}")):
        batches.append([department])
        batches.append([p for p in _definitions(department.parent) if p != department])
    return batches


def _example_files(examples: Path) -> list[Path]:
    """What dev mode deploys, in order (`_example_batches`, one after the other)."""
    return [path for batch in _example_batches(examples) for path in batch]


def _trigger_topics(settings: Settings, examples: Path) -> list[NewTopic]:
    """The events topics the examples' triggers name (an example that does not load is
    reported when it is deployed)."""
    workflows = []
    for path in _example_files(examples):
        if path.name == DEPARTMENT_FILE:
            continue
        with contextlib.suppress(DefinitionError):
            workflows.append(load_workflow(path.read_text()))
    return trigger_topics(settings, workflows)


class _ExamplesDeploy:
    """Dev mode's hooks: `follow_events`, the examples' events topics made and followed
    first (`Runtime.on_start`), `deploy` the examples as soon as the catalog has read its
    topic (`Runtime.on_catalog`; both while the worker's groups join on the embedded
    broker), then `announce` ready once an event published to them starts its workflows at
    once (`Runtime.on_ready`)."""

    def __init__(
        self, examples: Path, embedded: bool, demo_port: int, mail_port: int, helpdesk_token: str
    ) -> None:
        self._examples = examples
        self._embedded = embedded
        self._topics: list[NewTopic] = []
        self._demo_port = demo_port
        self._mail_port = mail_port
        self._helpdesk_token = helpdesk_token
        self._demo_url = f"http://{DEMO_HOST}:{demo_port}"
        self._deployed: list[tuple[str, Any]] = []

    async def follow_events(self, runtime: Runtime) -> None:
        # Parsed while the worker's group join is under way rather than before it is sent:
        # the examples' 0.1 - 0.2 s of CPU no longer delays the join (docs/performance-
        # history.md, "Dev mode ready"). Created before the router subscribes, the topics are
        # in its first assignment: created after, they would take a metadata refresh and a
        # rebalance of its group.
        settings = runtime.settings
        try:
            self._topics = await asyncio.to_thread(_trigger_topics, settings, self._examples)
            await asyncio.to_thread(create_topics, settings, self._topics)
        except RuntimeError as exc:
            runtime.fail(f"cannot start dev mode: {exc}")
            return
        if self._embedded:
            # The router's group join (2 s on the embedded broker) goes on beside the
            # worker's; a new broker holds no deployment yet whose triggers the router's
            # subscription would have to include.
            runtime.router.join()

    async def deploy(self, runtime: Runtime) -> None:
        if runtime.failure is not None:
            return  # stopping: the examples' events topics could not be made
        try:
            runner = await start_demo_services(
                DEMO_HOST, self._demo_port, self._helpdesk_token, self._mail_port, self._tell_mail
            )
        except OSError as exc:
            # Taken since it was checked: as plain a stop as if it had been taken before.
            runtime.fail(_taken("the demo services", DEMO_HOST, self._demo_port, exc, _DEMO_OPTION))
            return
        runtime.app.add_future(_keep(runner))

        async def deploy_one(path: Path) -> tuple[str, Any] | None:
            text = pointed_at(path.read_text(), self._demo_url)
            try:
                if path.name == DEPARTMENT_FILE:
                    await runtime.catalog.deploy_department(text, runtime.clock())
                    return None
                deployment, _ = await runtime.catalog.deploy(text, runtime.clock())
            except DefinitionError as exc:
                click.echo(f"skipped {path}: {exc}", err=True)
                return None
            return deployment.workflow_id, _sample_input(path)

        # A deployment waits to read its record back, up to a background fetch wait: one
        # after the other, the examples took a second (docs/performance-history.md,
        # "Dev mode ready").
        for batch in _example_batches(self._examples):
            done = await asyncio.gather(*(deploy_one(path) for path in batch))
            self._deployed += [one for one in done if one is not None]

    def _tell_mail(self, mail: dict[str, Any]) -> None:
        click.echo(
            f"demo mail sink: kept a mail to {', '.join(mail['to'])}: {mail['subject']!r}"
            f" (curl -s {self._demo_url}/mail)"
        )

    async def announce(self, runtime: Runtime) -> None:
        if runtime.failure is not None:
            return  # stopping: a topic could not be made or a port was taken
        # "Ready" once an event published to them starts its workflows at once, and the
        # executor runs their tasks at once (its group joins while the examples deploy).
        if not await runtime.router.following((t.topic for t in self._topics), ROUTER_WAIT_S):
            click.echo("the event router does not follow the events topics yet", err=True)
        if not await _until(runtime.executor.joined, ROUTER_WAIT_S):
            click.echo("the executor has not joined its group yet", err=True)
        cli = cli_command(sys.argv[0], sys.executable, shutil.which("braidflow"))
        key, key_file = await _owner_key(runtime)
        settings = runtime.settings
        banner = ready_banner(
            settings.api_url, settings.broker, self._deployed, cli, key, key_file, self._demo_url
        )
        click.echo(banner)


async def _until(done: Callable[[], bool], timeout_s: float) -> bool:
    """Wait until `done()`; False if it is not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _owner_key(runtime: Runtime) -> tuple[str | None, Path | None]:
    """The owner key of this dev session and the file the CLI finds it in (none when
    authentication is off); reused across sessions on a broker that keeps it (dev_key.py)."""
    if runtime.keys is None:
        return None, None
    return await dev_owner_key(runtime.keys, runtime.settings.api_url, runtime.clock())


async def _keep(runner: Any) -> None:
    """Hold the demo services until the worker stops, then close them."""
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


_API_OPTION = "--api-port or BRAIDFLOW_API_PORT"
_DEMO_OPTION = "--demo-port or BRAIDFLOW_DEMO_PORT"


def _taken(what: str, host: str, port: int, exc: OSError, option: str) -> str:
    return (
        f"cannot listen on {host}:{port} for {what} ({exc.strerror or exc}):"
        f" choose another port with {option}"
    )


def _check_ports(settings: Settings, demo_port: int) -> None:
    """Refuse to start, in one line, when a port dev mode listens on is taken."""
    for what, host, port, option in (
        ("the API", settings.api_host, settings.api_port, _API_OPTION),
        ("the demo services", DEMO_HOST, demo_port, _DEMO_OPTION),
    ):
        exc = bind_error(host, port)
        if exc is not None:
            raise click.ClickException(_taken(what, host, port, exc, option))


def _helpdesk_token() -> str:
    """The helpdesk credential of the support example: the worker's own when set, else one
    made for this session, given to the demo helpdesk and, through the environment the
    secrets provider reads, to the workflows; never printed."""
    token = os.environ.get(HELPDESK_TOKEN_ENV)
    if not token:
        token = os.environ[HELPDESK_TOKEN_ENV] = secrets.token_urlsafe(24)
    return token


def dev_connections(given: Path | None, demo_url: str, mail_port: int) -> str:
    """The connections file of a dev session: the demo stand-ins `model` and `mail`
    (demo_services.py), under the user's own file `given`, whose connections win by name.
    A `given` file that is wrong stops dev mode naming it and the field (ClickException)."""
    try:
        load_connections(given)
    except ConnectionsError as exc:
        raise click.ClickException(str(exc)) from None
    own = {} if given is None else yaml.safe_load(given.read_text(encoding="utf-8")) or {}
    return yaml.safe_dump({**demo_connections(demo_url, mail_port), **own}, sort_keys=False)


def run_dev(
    settings: Settings, embedded: bool, examples: Path, demo_port: int | None, loglevel: str
) -> None:
    """Run dev mode until Ctrl-C; start an embedded broker if `embedded`, else use the
    Kafka of `settings`.

    A port dev mode needs that is taken ends it with one line (ClickException), a
    failure of the running worker with WorkerFailed; the embedded broker, when its
    port 9092 is taken, takes a free one and says so.
    """
    demo_port = DEMO_PORT if demo_port is None else demo_port
    _check_ports(settings, demo_port)
    # Nobody types the sink's address: the examples reach it through the connections file.
    mail_port = free_port()
    connections = dev_connections(
        settings.connections, f"http://{DEMO_HOST}:{demo_port}", mail_port
    )
    with contextlib.ExitStack() as stack:
        made = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="braidflow-dev-")))
        (made / "connections.yaml").write_text(connections, encoding="utf-8")
        settings = replace(settings, connections=made / "connections.yaml")
        if embedded:
            port = DEFAULT_BROKER_PORT
            if bind_error("127.0.0.1", port) is not None:
                port = free_port()
                click.echo(
                    f"port {DEFAULT_BROKER_PORT} is taken: the embedded broker listens on"
                    f" 127.0.0.1:{port}"
                )
            broker = stack.enter_context(EmbeddedBroker(port=port))
            # A fresh in-memory broker needs fresh local state: old RocksDB rows would
            # describe executions this broker never saw.
            fresh = tempfile.TemporaryDirectory(prefix="braidflow-", dir=_memory_dir())
            data_dir = Path(stack.enter_context(fresh))
            settings = replace(
                settings, kafka=KafkaConnection.plain(broker.address), data_dir=data_dir
            )
        else:
            for problem in group_limit_problems(settings):
                click.echo(f"warning: a default Apache Kafka refuses this: {problem}", err=True)
        runtime = build_runtime(settings, fresh_broker=embedded)
        hooks = _ExamplesDeploy(examples, embedded, demo_port, mail_port, _helpdesk_token())
        runtime.on_start.append(hooks.follow_events)
        runtime.on_catalog.append(hooks.deploy)
        runtime.on_ready.append(hooks.announce)
        runtime.run(loglevel)
