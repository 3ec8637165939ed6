"""One Kafka cluster per test run; each test isolates itself with its own topic prefix.

The cluster is an embedded broker the suite starts, unless BRAIDFLOW_TEST_KAFKA_CONFIG
(a Kafka client properties file) or BRAIDFLOW_TEST_BROKER (host:port) names another one
(`suite_broker.py`; docs/testing.md says what such a cluster needs).

Workers are real subprocesses (`workers.WorkerProcess`). Starting one takes a few
seconds, so the tests that only talk to the API share `shared_worker`; tests that
crash or add workers start their own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiokafka import AIOKafkaProducer
from background_loop import BackgroundLoop
from llm_server import ChatServer, serving
from postgres_server import PostgresServer
from suite_broker import SuiteBroker
from workers import (
    EXAMPLE_HANDLERS,
    HELPDESK_TOKEN,
    SHARED_CHAT_CONNECTION,
    TASK_HANDLERS,
    WorkerProcess,
)

from braidflow.connectors.broker import EmbeddedBroker, free_port
from braidflow.connectors.demo_services import (
    HELPDESK_TOKEN_ENV,
    demo_connections,
    start_demo_services,
)
from braidflow.kafka_connection import KafkaConnection


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, add the log tail of every worker the test used to the report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    values = getattr(item, "funcargs", {}).values()
    workers = [v for v in values if isinstance(v, WorkerProcess)]
    workers += [w for v in values if isinstance(v, list) for w in v if isinstance(w, WorkerProcess)]
    shown = str(report.longrepr)
    for worker in dict.fromkeys(workers):
        if str(worker.log_path) not in shown:
            report.sections.append((f"{worker.name} log ({worker.log_path})", worker.log_tail(80)))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteBroker]:
    """The cluster every test-side client and worker connects to: the one the environment
    names, else a Tansu broker on 127.0.0.1, started only then."""
    configured = SuiteBroker.from_environment(os.environ)
    if configured is not None:
        yield configured
        return
    log = Path(tmp_path_factory.mktemp("broker")) / "tansu.log"
    with EmbeddedBroker(log=log) as running:
        yield SuiteBroker(KafkaConnection.plain(running.address), embedded=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (postgres_server.py), started once, for the read-model tests."""
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def read_model_url(postgres: PostgresServer) -> str:
    """A fresh PostgreSQL database for the test module: its URL, as BRAIDFLOW_READ_MODEL."""
    return postgres.new_database()


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses."""
    return new_prefix()


@pytest.fixture
async def producer(broker: SuiteBroker) -> AsyncIterator[AIOKafkaProducer]:
    """A producer to the suite's cluster that sends each record at once (no linger)."""
    producer = AIOKafkaProducer(**broker.aiokafka(), linger_ms=0)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture(scope="session")
def background_loop() -> Iterator[BackgroundLoop]:
    """A loop in a thread for the HTTP servers workers call while a test waits on them."""
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def demo_mail_port() -> int:
    """The port of the demo services' SMTP sink."""
    return free_port()


@pytest.fixture(scope="session")
def demo_services(background_loop: BackgroundLoop, demo_mail_port: int) -> Iterator[str]:
    """The demo services on a free port, their URL: tests deploy the examples `pointed_at`
    it, so a `braidflow dev` or another test run on 8090 is no obstacle."""
    port = free_port()
    runner: web.AppRunner = background_loop.run(
        start_demo_services("127.0.0.1", port, HELPDESK_TOKEN, demo_mail_port)
    )
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


@pytest.fixture(scope="session")
def chat_server(background_loop: BackgroundLoop) -> Iterator[tuple[ChatServer, str]]:
    """The tests' chat-completions server (llm_server.py) on a free port, and its base URL."""
    with serving(background_loop) as served:
        yield served


@pytest.fixture(scope="session")
def shared_worker(
    broker: SuiteBroker,
    tmp_path_factory: pytest.TempPathFactory,
    demo_services: str,
    demo_mail_port: int,
    chat_server: tuple[ChatServer, str],
) -> Iterator[WorkerProcess]:
    """One worker, with the test and the example handlers, for tests that only use the API;
    its connections are dev mode's stand-ins in the demo services, as the examples expect,
    and `test`, the tests' chat server.

    Tests sharing it deploy workflows under ids of their own.
    """
    home = tmp_path_factory.mktemp("shared-worker")
    connections = home / "connections.yaml"
    named = demo_connections(demo_services, demo_mail_port)
    named[SHARED_CHAT_CONNECTION] = {"url": chat_server[1]}
    connections.write_text(yaml.safe_dump(named))
    worker = WorkerProcess(
        broker,
        new_prefix(),
        home / "data",
        home / "worker.log",
        handlers=(TASK_HANDLERS, EXAMPLE_HANDLERS),
        env={
            "BRAIDFLOW_WEBHOOK_SECRET_SIGNED_HOOK": "s3cret",
            HELPDESK_TOKEN_ENV: HELPDESK_TOKEN,
            "BRAIDFLOW_CONNECTIONS": str(connections),
        },
    )
    try:
        yield worker.start().wait_ready()
    finally:
        worker.stop()
