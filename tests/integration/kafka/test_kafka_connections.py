"""Workers on secured and unreachable Kafka: a workflow end to end over TLS, and one clear
line when the cluster cannot be reached or its certificate is not trusted.

The embedded broker cannot serve TLS (Tansu 0.6), so a proxy of the tests' own terminates
it (`JoinRefusingProxy` with a TLS context, refusing nothing) and the broker advertises
the proxy's address: every connection of every client library (Faust's aiokafka, the
executor's and read models' aiokafka, the router's and bulk producer's confluent-kafka)
goes over TLS, with a CA and a server certificate made here with trustme. For SASL the
proxy also logs each connection in with SASL/PLAIN (`sasl_plain_gate.py`).
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from background_loop import BackgroundLoop
from confluent_kafka.admin import NewTopic
from join_refusing_proxy import JoinRefusingProxy
from suite_broker import SuiteBroker
from workers import DEV_SPEED, TASK_HANDLERS, WorkerProcess

from braidflow.client import EventPublisher
from braidflow.connectors.broker import EmbeddedBroker, free_port
from braidflow.kafka_connection import KafkaConnection
from braidflow.kafka_reach import connected_admin

WAIT_S = 60.0
EXAMPLES = Path(__file__).parents[3] / "examples"


USER, PASSWORD = "braidflow", "s3cret"


@dataclass(frozen=True)
class TlsBroker:
    """The embedded broker behind a TLS-terminating proxy at 127.0.0.1:`port`, which also
    asks for a SASL/PLAIN login when `sasl`."""

    port: int
    ca: Path
    home: Path
    sasl: bool

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def properties(self, name: str, ca: Path | None = None, password: str = PASSWORD) -> Path:
        """A Kafka client properties file for this broker, trusting `ca` (default: its CA)."""
        login = (
            f"sasl.mechanism=PLAIN\nsasl.username={USER}\nsasl.password={password}\n"
            if self.sasl
            else ""
        )
        path = self.home / name
        path.write_text(
            "# The worker reaches the broker through the TLS proxy only.\n"
            f"bootstrap.servers={self.address}\n"
            f"security.protocol={'SASL_SSL' if self.sasl else 'SSL'}\n"
            f"ssl.ca.location={ca or self.ca}\n"
            "client.id=braidflow-tls-test\n" + login
        )
        return path


@contextmanager
def proxied_broker(loop: BackgroundLoop, home: Path, sasl: bool) -> Iterator[TlsBroker]:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(home / "ca.pem"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # The clients check the broker's name: the certificate is for the address they dial.
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    port = free_port()
    users = {USER: PASSWORD} if sasl else None
    with (
        EmbeddedBroker(advertised_port=port, log=home / "tansu.log") as broker,
        JoinRefusingProxy(loop, port, broker.port, lambda group: False, tls=server, users=users),
    ):
        yield TlsBroker(port, home / "ca.pem", home, sasl)


@pytest.fixture(scope="module")
def tls_broker(
    background_loop: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsBroker]:
    with proxied_broker(background_loop, tmp_path_factory.mktemp("tls"), sasl=False) as broker:
        yield broker


@pytest.fixture(scope="module")
def sasl_broker(
    background_loop: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsBroker]:
    """SASL_SSL with PLAIN; the other mechanisms are checked by translation (unit tests)."""
    with proxied_broker(background_loop, tmp_path_factory.mktemp("sasl"), sasl=True) as broker:
        yield broker


@pytest.fixture(scope="module")
def http_service(background_loop: BackgroundLoop) -> Iterator[str]:
    """The service the workflow's http node calls; its base URL."""

    async def stock(request: web.Request) -> web.Response:
        return web.json_response({"sku": request.match_info["sku"], "in_stock": 3})

    app = web.Application()
    app.router.add_get("/stock/{sku}", stock)
    port = free_port()
    runner = background_loop.serve(app, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


def order_workflow(workflow_id: str, event_type: str, service: str) -> str:
    """An event starts it; a task, then an http node, then the end."""
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [{"event": {"types": [event_type]}}],
            "nodes": [
                {
                    "id": "echo",
                    "type": "task",
                    "params": {"handler": "test.echo", "input": "${event.data}"},
                },
                {
                    "id": "stock",
                    "type": "http",
                    "params": {
                        "method": "GET",
                        "url": f"{service}/stock/${{nodes.echo.output.sku}}",
                    },
                },
                {
                    "id": "done",
                    "type": "end",
                    "params": {
                        "output": {
                            "echoed": "${nodes.echo.output}",
                            "in_stock": "${nodes.stock.output.body.in_stock}",
                        }
                    },
                },
            ],
            "edges": [{"from": "echo", "to": "stock"}, {"from": "stock", "to": "done"}],
        }
    )


def completed_executions(worker: WorkerProcess, workflow_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        reply = worker.api.get(f"/workflows/{workflow_id}/executions?status=completed")
        assert reply.status == 200, reply
        if reply.body["executions"]:
            return list(reply.body["executions"])
        time.sleep(0.2)
    worker.fail(f"no execution of {workflow_id} completed in {WAIT_S:g} s")
    return []


def run_order_over(broker: TlsBroker, http_service: str, tmp_path: Path) -> None:
    """A worker started with --kafka-config runs the order workflow an event starts."""
    properties = broker.properties("client.properties")
    connection = KafkaConnection.load(properties)
    kind = f"tls{uuid.uuid4().hex[:8]}"
    # Made before the worker starts, the topic is in its router's first assignment.
    admin, _ = connected_admin(connection)
    for created in admin.create_topics([NewTopic(f"events.{kind}", 4, 1)]).values():
        created.result(timeout=10)
    worker = WorkerProcess(
        SuiteBroker(connection, embedded=True, config_file=properties),
        f"t{uuid.uuid4().hex[:10]}",
        tmp_path / "data",
        tmp_path / "worker.log",
        handlers=(TASK_HANDLERS,),
    )
    try:
        worker.start().wait_ready(timeout_s=90)
        workflow_id = f"{kind}-order"
        reply = worker.api.deploy(order_workflow(workflow_id, f"{kind}.placed", http_service))
        assert reply.status == 201, reply
        with EventPublisher(connection, source="/tests/tls") as events:
            events.publish(f"{kind}.placed", {"sku": "A-7"}, subject="order-1")
        (execution,) = completed_executions(worker, workflow_id)
        view = worker.api.execution(execution["execution_id"]).body
        assert view["output"] == {"echoed": {"sku": "A-7"}, "in_stock": 3}
        assert execution["event"]["type"] == f"{kind}.placed"
    finally:
        worker.stop()


def test_a_workflow_runs_end_to_end_over_tls(
    tls_broker: TlsBroker, http_service: str, tmp_path: Path
) -> None:
    run_order_over(tls_broker, http_service, tmp_path)


def test_a_workflow_runs_end_to_end_over_sasl_ssl(
    sasl_broker: TlsBroker, http_service: str, tmp_path: Path
) -> None:
    run_order_over(sasl_broker, http_service, tmp_path)


def run_worker(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`braidflow worker ARGS` to its end (it is expected to stop by itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAIDFLOW_")}
    env.update(DEV_SPEED)
    command = [
        sys.executable,
        "-m",
        "braidflow.cli",
        "worker",
        *args,
        "--data-dir",
        str(tmp_path / "data"),
        "--api-port",
        str(free_port()),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=90, cwd=tmp_path
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *named: str) -> None:
    """Exited non-zero with one line on stderr, naming each of `named`; no traceback."""
    said = (
        f"exit status {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    assert result.returncode != 0, said
    assert "Traceback" not in result.stdout + result.stderr, said
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), said
    for text in named:
        assert text in lines[0], said


def test_a_broker_whose_certificate_another_ca_signed_stops_the_worker_with_one_line(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    result = run_worker(
        tmp_path, "--kafka-config", str(tls_broker.properties("wrong-ca.properties", other))
    )
    assert_one_line(
        result,
        f"cannot reach Kafka at {tls_broker.address} (SSL)",
        "certificate verify failed",
    )


def test_refused_credentials_stop_the_worker_with_one_line(
    sasl_broker: TlsBroker, tmp_path: Path
) -> None:
    wrong = sasl_broker.properties("wrong-password.properties", password="guessed")
    result = run_worker(tmp_path, "--kafka-config", str(wrong))
    assert_one_line(
        result,
        f"cannot reach Kafka at {sasl_broker.address} (SASL_SSL, PLAIN as {USER})",
        "Invalid username or password",
    )
    assert "guessed" not in result.stdout + result.stderr


def test_an_unreachable_broker_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    result = run_worker(tmp_path, "--broker", f"kafka://{nobody}")
    assert_one_line(result, f"cannot reach Kafka at {nobody} (PLAINTEXT)", "Connection refused")


def test_a_worker_takes_fausts_kafka_url_for_its_broker(
    broker: SuiteBroker, tmp_path: Path
) -> None:
    in_fausts_form = replace(broker, broker_option=f"kafka://{broker.address}")
    worker = WorkerProcess(
        in_fausts_form, f"t{uuid.uuid4().hex[:10]}", tmp_path / "data", tmp_path / "log"
    )
    try:
        worker.start().wait_ready()
        assert worker.api.get("/ready").status == 200
    finally:
        worker.stop()


def test_dev_mode_with_a_kafka_config_uses_that_cluster_not_an_embedded_broker(
    sasl_broker: TlsBroker, tmp_path: Path
) -> None:
    properties = sasl_broker.properties("dev.properties")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAIDFLOW_")}
    # Dev mode writes its owner key under the config home: the test's, not the user's.
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    # The test workers' group settings: on a cluster it did not start, dev mode keeps
    # production's 10 s session, and Tansu answers a group join after half of it.
    env.update(DEV_SPEED)
    command = [
        sys.executable,
        "-m",
        "braidflow.cli",
        "dev",
        "--kafka-config",
        str(properties),
        "--examples",
        str(EXAMPLES),
        "--data-dir",
        str(tmp_path / "data"),
        "--api-port",
        str(free_port()),
        "--demo-port",
        str(free_port()),
    ]
    output = tmp_path / "dev.out"
    with open(output, "wb") as out:
        dev = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while "braidflow is ready" not in output.read_text():
            assert dev.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        said = output.read_text()
        assert f"broker: {sasl_broker.address}" in said, said
        assert "embedded broker" not in said, said
        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=60) == 0, output.read_text()
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait(timeout=10)
