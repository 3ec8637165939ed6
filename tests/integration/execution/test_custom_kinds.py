"""A node kind another package adds, run by a worker end to end: the package is a real
distribution of the tests' own (`tests/fixtures/custom_kinds`, a module and its `*.dist-info`
with `entry_points.txt`) on the worker subprocess's path, found as an installed one is."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

PACKAGES = Path(__file__).parent.parent.parent / "fixtures" / "custom_kinds"

GREETER = """
id: greeter
input:
  type: object
  required: [who]
  properties:
    who: {type: string}
nodes:
  - id: hello
    type: greet
    params: {name: "${input.who}", salutation: Good morning}
    timeout: 5s
  - id: done
    type: end
    params: {output: "${nodes.hello.output}"}
  - id: nobody
    type: end
    params: {output: {error: "${nodes.hello.error.type}"}}
edges:
  - {from: hello, to: done}
  - {from: hello, to: nobody, on_error: true}
"""


@pytest.fixture(scope="module")
def worker(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker with the greeting package on its path, the greeter workflow deployed."""
    home = tmp_path_factory.mktemp("custom-kinds")
    worker = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        home / "data",
        home / "worker.log",
        env={"PYTHONPATH": str(PACKAGES / "greeting")},
    )
    try:
        worker.start().wait_ready()
        reply = worker.api.deploy(GREETER)
        assert reply.status == 201, reply
        yield worker
    finally:
        worker.stop()


def test_a_worker_runs_a_node_of_a_package_s_kind_keeping_its_log(worker: WorkerProcess) -> None:
    execution_id = worker.api.start("greeter", {"who": "Ada"})
    view = worker.wait_until_finished([execution_id])[execution_id]
    assert view["status"] == "completed", view
    assert view["output"] == {
        "greeting": "Good morning, Ada!",
        "idempotency_key": f"{execution_id}:hello:1",
        "timeout_ms": 5000,
    }
    logs = until(
        lambda: worker.api.get(f"/executions/{execution_id}/logs").body.get("logs"),
        "the node run's log",
    )
    assert [(run["node_id"], [line["message"] for line in run["lines"]]) for run in logs] == [
        ("hello", ["greeting Ada"])
    ]


def test_a_package_s_kind_that_fails_takes_the_on_error_edge(worker: WorkerProcess) -> None:
    execution_id = worker.api.start("greeter", {"who": "nobody"})
    view = worker.wait_until_finished([execution_id])[execution_id]
    assert view["status"] == "completed", view
    assert view["output"] == {"error": "NoOneToGreet"}


def test_the_api_refuses_a_definition_naming_the_bad_param_of_a_package_s_kind(
    worker: WorkerProcess,
) -> None:
    reply = worker.api.deploy(GREETER.replace("Good morning", "Howdy"))
    assert reply.status == 400, reply
    assert "node 'hello': params.salutation: 'Howdy' is not one of" in str(reply.body), reply


def test_a_worker_with_a_refused_package_does_not_start_and_names_it(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        broker,
        prefix,
        tmp_path / "data",
        tmp_path / "worker.log",
        env={"PYTHONPATH": str(PACKAGES / "refused")},
    )
    worker.start()
    try:
        until(lambda: not worker.alive, "the worker's exit", timeout_s=60)
    finally:
        worker.stop()
    assert worker.returncode == 1
    assert (
        "cannot start the worker: custom node kinds refused (braidflow.nodes entry points):"
        " package 'acme-refused' (chant = acme_refused:CHANT):" in worker.log()
    )
    assert (
        "package 'acme-refused' (http = acme_refused:HTTP): kind 'http' clashes with a"
        " built-in kind;" in worker.log()
    )
    assert "Traceback" not in worker.log()
