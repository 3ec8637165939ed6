"""The audit log, newest first: a read model of the audit topic.

Every worker follows the whole audit topic into a read model, a local SQLite file or
PostgreSQL (`AuditProjection` feeding an `AuditIndex`), so any of them lists every record,
whichever worker (or the command line) wrote it. The index is a cache of the
topic (see `braidflow.connectors.projection`); a record read twice is kept once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition

from braidflow.connectors.projection import Record, TopicProjection
from braidflow.connectors.read_model_db import ReadModel, ReadModelLocation, given_conditions
from braidflow.kafka_connection import KafkaConnection
from braidflow.schemas.audit import AuditRecord, decode_audit

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    position BIGINT NOT NULL,
    action TEXT NOT NULL,
    principal TEXT NOT NULL,
    tenant TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_age ON audit (at DESC, position DESC);
CREATE INDEX IF NOT EXISTS audit_by_tenant ON audit (tenant, at DESC, position DESC);
CREATE TABLE IF NOT EXISTS audit_targets (
    id TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (value, id)
);
"""

_INSERT = """
INSERT INTO audit VALUES (:id, :at, :position, :action, :principal, :tenant, :target, :detail,
    :source)
ON CONFLICT (id) DO NOTHING
"""

AuditEntry = tuple[int, AuditRecord]
"""A record of the audit topic and its offset (the topic has one partition: its order)."""


class AuditIndex(ReadModel):
    """Audit records, built from the audit topic, in a SQLite file (a `Path`) or a
    PostgreSQL schema.

    Not thread-safe: use it from one thread (the worker's event loop, through `off_loop`).
    """

    def __init__(self, location: ReadModelLocation) -> None:
        super().__init__(location, _SCHEMA)

    def apply_many(
        self, entries: Iterable[AuditEntry], positions: Mapping[TopicPartition, int] | None = None
    ) -> None:
        """Store records and the next offsets to read (`positions`), in one transaction."""
        with self.storing(positions):
            for position, record in entries:
                self.db.execute(_INSERT, _row(position, record))
                self.db.executemany(
                    "INSERT INTO audit_targets VALUES (?, ?) ON CONFLICT (value, id) DO NOTHING",
                    [(record.id, value) for value in sorted(set(record.target.values()))],
                )

    def list(
        self,
        *,
        tenant: str | None = None,
        principal: str | None = None,
        target: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Records newest first, at most `limit`: of `tenant`, by `principal`, about `target`
        (any of its target ids equals it), at `from_ms` or later and `to_ms` or earlier, as
        given."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = "SELECT id, at, action, principal, tenant, target, detail, source FROM audit"
        filters, params = given_conditions(
            (
                ("tenant = ?", tenant),
                ("principal = ?", principal),
                ("id IN (SELECT id FROM audit_targets WHERE value = ?)", target),
                ("at >= ?", from_ms),
                ("at <= ?", to_ms),
            )
        )
        query += f" WHERE true{filters} ORDER BY at DESC, position DESC LIMIT ?"
        rows = self.db.execute(query, (*params, limit))
        return [_record(*row).view() for row in rows]


class AuditProjection(TopicProjection):
    """Follows the audit topic into an `AuditIndex`; a record that is no audit record is
    skipped with a warning (the log must never stall on one)."""

    def __init__(
        self,
        index: AuditIndex,
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
            entries: list[AuditEntry] = []
            for record in records:
                try:
                    entries.append(
                        (record.offset, decode_audit(list(record.headers), record.value))
                    )
                except ValueError as exc:
                    log.warning(
                        "skipping a record of %s[%d]@%d that is no audit record: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        exc,
                    )
            index.apply_many(entries, positions)

        super().__init__(
            index, apply, connection, topic, fetch_max_wait_ms, name="audit index", group=group
        )


def _row(position: int, record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": record.at,
        "position": position,
        "action": record.action,
        "principal": record.principal,
        "tenant": record.tenant,
        "target": json.dumps(dict(record.target), separators=(",", ":")),
        "detail": json.dumps(dict(record.detail), separators=(",", ":")),
        "source": record.source,
    }


def _record(
    id: str,
    at: int,
    action: str,
    principal: str,
    tenant: str,
    target: str,
    detail: str,
    source: str,
) -> AuditRecord:
    return AuditRecord(
        id, action, at, principal, tenant, json.loads(target), json.loads(detail), source
    )
