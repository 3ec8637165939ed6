"""Handlers' log lines by execution: a SQLite read model of the logs topic.

The executor that runs a node sends what its handler logged as one record per node run
(`braidflow.schemas.node_logs`); every worker follows the whole logs topic into its read model
(`NodeLogProjection` feeding a `NodeLogIndex`: a SQLite file, or the PostgreSQL database of
`BRAIDFLOW_READ_MODEL`, see `read_model_db`), so any worker shows any execution's logs
without asking the one that ran it. The index is a cache of the topic (see
`braidflow.connectors.projection`). A run read twice (a task delivered again, a rebuild)
is stored once: its id is the task's idempotency key, and the first copy read wins.

Kept as long as the topic keeps them (`LOGS_RETENTION_MS`): each batch drops the runs older
than the newest run read by more than that, so the file does not grow for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition

from braidflow.access import DEFAULT_TENANT
from braidflow.connectors.projection import Record, TopicProjection
from braidflow.connectors.read_model_db import ReadModel, ReadModelLocation
from braidflow.kafka_connection import KafkaConnection
from braidflow.schemas.node_logs import LOGS_RETENTION_MS, NodeRunLog, decode_node_log

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS node_logs (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    at BIGINT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS node_logs_by_execution ON node_logs (execution_id, tenant);
CREATE INDEX IF NOT EXISTS node_logs_by_age ON node_logs (at);
"""

_INSERT = "INSERT INTO node_logs VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"

NodeLogRecord = tuple[int, int, bytes]
"""A record of the logs topic: partition, offset and value."""


class NodeLogIndex(ReadModel):
    """Node run logs, built from the logs topic, in a SQLite file (a `Path`) or a PostgreSQL
    schema. Use it from one thread (the worker's event loop, through `off_loop`)."""

    def __init__(self, location: ReadModelLocation, retention_ms: int = LOGS_RETENTION_MS) -> None:
        super().__init__(location, _SCHEMA)
        self._retention_ms = retention_ms

    def apply_many(
        self,
        records: Iterable[NodeLogRecord],
        positions: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        """Store node run logs and the next offsets to read, in one transaction; drop runs
        older than the retention. A record that is no node run log is skipped with a warning."""
        runs: list[tuple[NodeRunLog, str]] = []
        for partition, offset, value in records:
            try:
                runs.append((decode_node_log(value), value.decode()))
            except ValueError as exc:
                log.warning(
                    "skipping an undecodable node log at partition %d offset %d: %s",
                    partition,
                    offset,
                    exc,
                )
        with self.storing(positions):
            self.db.executemany(
                _INSERT, [(r.id, r.execution_id, r.tenant, r.at, v) for r, v in runs]
            )
            if runs:
                horizon = max(r.at for r, _ in runs) - self._retention_ms
                self.db.execute("DELETE FROM node_logs WHERE at < ?", (horizon,))

    def of_execution(self, execution_id: str, tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        """What each node run of `tenant`'s execution logged, as the API shows it: in the
        order the runs ended, then by node, item and attempt."""
        rows = self.db.execute(
            "SELECT value FROM node_logs WHERE execution_id = ? AND tenant = ?",
            (execution_id, tenant),
        )
        runs = [decode_node_log(value) for (value,) in rows]
        runs.sort(key=lambda r: (r.at, r.node_id, -1 if r.item is None else r.item, r.attempt))
        return [run.view() for run in runs]


class NodeLogProjection(TopicProjection):
    """Follows every partition of the logs topic into a `NodeLogIndex`."""

    def __init__(
        self,
        index: NodeLogIndex,
        connection: KafkaConnection,
        topic: str,
        fetch_max_wait_ms: int = 100,
        *,
        group: str | None = None,
    ) -> None:
        def apply(
            records: Sequence[Record],
            positions: Mapping[TopicPartition, int],
        ) -> None:
            index.apply_many(
                [(r.partition, r.offset, r.value) for r in records if r.value is not None],
                positions,
            )

        super().__init__(
            index, apply, connection, topic, fetch_max_wait_ms, name="node log index", group=group
        )
