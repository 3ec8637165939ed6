"""A worker's data dir belongs to the cluster whose changelogs it mirrors: on another
cluster (here a fresh embedded broker) it is rebuilt from that cluster's changelogs."""

from __future__ import annotations

from pathlib import Path

from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.connectors.broker import EmbeddedBroker
from braidflow.kafka_connection import KafkaConnection

ECHO = """
id: local-echo
nodes:
  - {id: echo, type: task, params: {handler: test.echo, input: {n: "${input.n}"}}}
  - {id: done, type: end, params: {output: {n: "${nodes.echo.output.n}"}}}
edges:
  - {from: echo, to: done}
"""


def run_some(worker: WorkerProcess, count: int) -> list[str]:
    """Deploy ECHO and run `count` executions to completion; their ids."""
    assert worker.api.deploy(ECHO).status in (200, 201)
    ids = [worker.api.start("local-echo", {"n": n}) for n in range(count)]
    finished = worker.wait_until_finished(ids, 60)
    assert {e["status"] for e in finished.values()} == {"completed"}, finished
    return ids


def test_a_worker_on_a_data_dir_left_from_another_broker_rebuilds_it(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with WorkerProcess(broker, prefix, data_dir, tmp_path / "on-a.log") as on_a:
        earlier = run_some(on_a.wait_ready(), 12)
    with (
        EmbeddedBroker(log=tmp_path / "b.log") as other,
        WorkerProcess(
            SuiteBroker(KafkaConnection.plain(other.address), embedded=True),
            prefix,
            data_dir,
            tmp_path / "on-b.log",
        ) as on_b,
    ):
        run_some(on_b.wait_ready(), 3)
        # Rebuilt from a cluster that never saw them: gone, not stale rows.
        assert on_b.api.execution(earlier[0]).status == 404
        assert "holds the state of another Kafka cluster" in on_b.log()
