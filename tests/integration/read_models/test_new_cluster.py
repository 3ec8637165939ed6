"""A read model built from one Kafka cluster is read again from the start on another: a
PostgreSQL schema outlives the workers' data dirs, so it remembers its cluster itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka import TopicPartition
from read_model_stores import ReadModelAt
from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.connectors.audit_index import AuditIndex
from braidflow.connectors.dead_letter_index import DeadLetterIndex
from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.connectors.node_log_index import NodeLogIndex
from braidflow.connectors.read_model_facts import adopt_cluster
from braidflow.engine.messages import LifecycleEvent

POSITIONS = {TopicPartition("bf.lifecycle", 0): 7}
MODELS: dict[str, Callable[[Any], Any]] = {
    "executions-index": ExecutionIndex,
    "dead-letters-index": DeadLetterIndex,
    "audit-index": AuditIndex,
    "node-logs-index": NodeLogIndex,
}


def started(execution_id: str) -> LifecycleEvent:
    return LifecycleEvent(
        f"{execution_id}/started", "workflow.started", execution_id, "refund", 1, 1_000,
        data={"input": {}, "event": None},
    )  # fmt: skip


def test_an_execution_index_of_another_cluster_is_emptied_and_read_again(
    read_model_at: ReadModelAt,
) -> None:
    index = ExecutionIndex(read_model_at("executions-index"))
    try:
        index.apply_many([started("e1")], POSITIONS)
        # Stored before clusters were: kept, and from now on of this cluster.
        assert adopt_cluster(index, "cluster-a") is False
        assert adopt_cluster(index, "cluster-a") is False
        assert index.positions() == POSITIONS
        assert [e["execution_id"] for e in index.list("refund")] == ["e1"]
        assert adopt_cluster(index, None) is False
        assert index.positions() == POSITIONS
    finally:
        index.close()
    # Another worker (a process of its own) starts on the new cluster.
    again = ExecutionIndex(read_model_at("executions-index"))
    try:
        assert adopt_cluster(again, "cluster-b") is True
        assert again.positions() == {}
        assert again.list("refund") == []
        again.apply_many([started("e2")], POSITIONS)
        assert adopt_cluster(again, "cluster-b") is False
        assert [e["execution_id"] for e in again.list("refund")] == ["e2"]
    finally:
        again.close()


@pytest.mark.parametrize("name", list(MODELS))
def test_every_read_model_forgets_its_positions_on_another_cluster(
    read_model_at: ReadModelAt, name: str
) -> None:
    model = MODELS[name](read_model_at(name))
    try:
        model.apply_many([], POSITIONS)
        assert adopt_cluster(model, "cluster-a") is False
        assert model.positions() == POSITIONS
        assert adopt_cluster(model, "cluster-b") is True
        assert model.positions() == {}
        model.reset()  # another topic, say: the cluster is still this one
        assert adopt_cluster(model, "cluster-b") is False
    finally:
        model.close()


def test_a_worker_reads_a_shared_schema_of_another_cluster_again(
    broker: SuiteBroker, prefix: str, tmp_path: Path, read_model_url: str
) -> None:
    env = {"BRAIDFLOW_READ_MODEL": read_model_url}
    worker = WorkerProcess(broker, prefix, tmp_path / "data", tmp_path / "worker.log", env=env)
    worker.start().wait_ready()
    worker.stop()
    schema = f'"{prefix}_executions_index"'
    with psycopg.connect(read_model_url, autocommit=True) as conn:
        # As if it had been built from a cluster since replaced, with an execution of it.
        conn.execute(
            f"UPDATE {schema}.read_model_facts SET value = 'replaced' WHERE name = 'cluster_id'"
        )
        conn.execute(
            f"INSERT INTO {schema}.executions (execution_id, workflow_id, workflow_version,"
            " status, started_at, updated_at) VALUES ('ghost', 'refund', 1, 'running', 1, 1)"
        )
    worker.start().wait_ready()
    try:
        with psycopg.connect(read_model_url) as conn:
            ghosts = conn.execute(f"SELECT execution_id FROM {schema}.executions").fetchall()
            (cluster,) = conn.execute(
                f"SELECT value FROM {schema}.read_model_facts WHERE name = 'cluster_id'"
            ).fetchone()
        assert ghosts == []
        assert cluster not in ("replaced", None)
    finally:
        worker.stop()
