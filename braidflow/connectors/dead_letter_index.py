"""Dead letters, newest first: a read model of the dead-letter topic.

Every worker follows the whole dead-letter topic into a read model, a local SQLite file
or PostgreSQL (`DeadLetterProjection` feeding a `DeadLetterIndex`), so any of them can list
the dead letters of both kinds (see `braidflow.schemas.dead_letters`) and show
one. The index is a cache of the topic (see `braidflow.connectors.projection`);
applying a dead letter twice changes nothing.

A dead letter's id is the node dead letter's own id, or, for a record, where
that record was: `topic:partition:offset` (topic names have no colon).

Each belongs to a tenant: a node dead letter to its execution's, a record to the tenant
whose events topic it came from (`tenants.T.*`), any other record to the default tenant.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition

from braidflow.access import DEFAULT_TENANT
from braidflow.connectors.projection import Record, TopicProjection
from braidflow.connectors.read_model_db import (
    ReadModel,
    ReadModelLocation,
    add_missing_columns,
    given_conditions,
)
from braidflow.engine import DeadLetterNode, ids
from braidflow.engine.state import iso_time
from braidflow.kafka_connection import KafkaConnection
from braidflow.schemas.dead_letters import (
    KINDS,
    DeadLetter,
    RedriveMark,
    decode_dead_letter,
)
from braidflow.tenants import owner_of_topic

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    workflow_id TEXT,
    fields TEXT NOT NULL,
    redriven_at BIGINT,
    tenant TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS dead_letters_by_age ON dead_letters (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS dead_letters_by_workflow
    ON dead_letters (workflow_id, at DESC, id DESC);
"""

# The first copy read wins: a dead letter is written once, and copies read
# again after a crash or a rebuild are the same; a redrive mark must stay.
_INSERT = """
INSERT INTO dead_letters VALUES (:id, :kind, :at, :workflow_id, :fields, NULL, :tenant)
ON CONFLICT (id) DO NOTHING
"""

_SELECT = "SELECT id, kind, at, fields, redriven_at FROM dead_letters"

DeadLetterRecord = tuple[int, int, bytes]
"""A record of the dead-letter topic: partition, offset and value."""


class DeadLetterIndex(ReadModel):
    """Dead letters of both kinds, built from the dead-letter topic, in a SQLite file (a
    `Path`) or a PostgreSQL schema.

    Not thread-safe: use it from one thread (the worker's event loop, through `off_loop`).
    Other processes may read a SQLite file meanwhile (WAL mode). A `reset` forgets redrive
    marks too: they name dead letters of the log being replaced.
    """

    def __init__(self, location: ReadModelLocation) -> None:
        super().__init__(location, _SCHEMA)
        db = self.db.sqlite
        if db is None:
            return
        # Every letter written before tenants is the default tenant's: no need to re-read.
        with db:
            add_missing_columns(db, "dead_letters", ["tenant TEXT NOT NULL DEFAULT 'default'"])

    def apply_many(
        self,
        records: Iterable[DeadLetterRecord],
        positions: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        """Record dead letters and redrive marks, in their order, and the next offsets to read
        (`positions`), in one transaction.

        A record that is neither is skipped with a warning.
        """
        read: list[DeadLetter | DeadLetterNode | RedriveMark] = []
        for partition, offset, value in records:
            try:
                read.append(decode_dead_letter(value))
            except ValueError as exc:
                log.warning(
                    "skipping an undecodable dead letter at partition %d offset %d: %s",
                    partition,
                    offset,
                    exc,
                )
        with self.storing(positions):
            for record in read:
                if isinstance(record, RedriveMark):
                    self._mark(record.dead_letter_id, record.at)
                else:
                    self.db.execute(_INSERT, _row(record))

    def list(
        self,
        *,
        kind: str | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        tenant: str = DEFAULT_TENANT,
    ) -> list[dict[str, Any]]:
        """`tenant`'s dead letters, newest first, at most `limit`, of `kind` and
        `workflow_id` if given.

        Record dead letters belong to no workflow, so a `workflow_id` leaves them out.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        filters, params = given_conditions((("kind = ?", kind), ("workflow_id = ?", workflow_id)))
        query = f"{_SELECT} WHERE tenant = ?{filters} ORDER BY at DESC, id DESC LIMIT ?"
        return [_summary(*row) for row in self.db.execute(query, (tenant, *params, limit))]

    def get(self, id: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
        """The dead letter `id`, as `list` shows it; None if `tenant` has none by that id."""
        row = self.db.execute(f"{_SELECT} WHERE id = ? AND tenant = ?", (id, tenant)).fetchone()
        return None if row is None else _summary(*row)

    def mark_redriven(self, id: str, at: int) -> bool:
        """Note that dead letter `id` was sent again at `at` (epoch ms); false if it is unknown.

        For this index at once; other workers' indexes learn it from the `RedriveMark`
        the redrive writes to the topic. Of several redrives the latest is shown.
        """
        with self.db.transaction():
            return self._mark(id, at)

    def _mark(self, id: str, at: int) -> bool:
        query = "UPDATE dead_letters SET redriven_at = {greatest}(coalesce(redriven_at, ?), ?)"
        # RETURNING, not rowcount: PostgreSQL's pipelined statements tell no count at once.
        query += " WHERE id = ? RETURNING id"
        return self.db.execute(query, (at, at, id)).fetchone() is not None


class DeadLetterProjection(TopicProjection):
    """Follows every partition of the dead-letter topic into a `DeadLetterIndex`."""

    def __init__(
        self,
        index: DeadLetterIndex,
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
            letters: list[DeadLetterRecord] = []
            for record in records:
                if record.value is None:
                    log.warning(
                        "skipping a dead letter with no value at %s[%d]@%d",
                        record.topic,
                        record.partition,
                        record.offset,
                    )
                else:
                    letters.append((record.partition, record.offset, record.value))
            index.apply_many(letters, positions)

        super().__init__(
            index,
            apply,
            connection,
            topic,
            fetch_max_wait_ms,
            name="dead-letter index",
            group=group,
        )


def _row(letter: DeadLetter | DeadLetterNode) -> dict[str, Any]:
    if isinstance(letter, DeadLetterNode):
        fields: dict[str, Any] = {
            "execution_id": letter.execution_id,
            "workflow_id": letter.workflow_id,
            "workflow_version": letter.workflow_version,
            "node_id": letter.node_id,
            "input": letter.input,
            "errors": [{"type": e.type, "message": e.message} for e in letter.errors],
            "context": dict(letter.context),
        }
        return _stored(letter.id, "node", letter.at, letter.workflow_id, fields, letter.tenant)
    fields = {
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "key": _text(letter.key),
        "value": _text(letter.value),
        "reason": letter.reason,
    }
    if letter.truncated:
        fields["truncated"] = {name: cut.as_json() for name, cut in letter.truncated.items()}
    letter_id = ids.record_letter_id(letter.topic, letter.partition, letter.offset)
    return _stored(letter_id, "record", letter.at, None, fields, _record_tenant(letter))


def _record_tenant(letter: DeadLetter) -> str:
    """The tenant a record dead letter belongs to: the one it names, else its events
    topic's, else the default."""
    if letter.tenant != DEFAULT_TENANT:
        return letter.tenant
    return owner_of_topic(letter.topic)


def _stored(
    id: str,
    kind: str,
    at: int,
    workflow_id: str | None,
    fields: Mapping[str, Any],
    tenant: str,
) -> dict[str, Any]:
    return {
        "id": id,
        "kind": kind,
        "at": at,
        "workflow_id": workflow_id,
        "fields": json.dumps(fields, separators=(",", ":")),
        "tenant": tenant,
    }


def _text(raw: bytes | None) -> str | None:
    """Base64 text of a key or value, which may be any bytes."""
    return None if raw is None else base64.b64encode(raw).decode("ascii")


def _summary(id: str, kind: str, at: int, fields: str, redriven_at: int | None) -> dict[str, Any]:
    return {
        "id": id,
        "kind": kind,
        "at": iso_time(at),
        **json.loads(fields),
        "redriven_at": None if redriven_at is None else iso_time(redriven_at),
    }
