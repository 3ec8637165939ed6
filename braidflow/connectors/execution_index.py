"""Executions by workflow, pending approvals and the events that resumed waits: a read model
of the lifecycle topic.

Execution state lives in the partitions of whichever workers own them, so no
single worker can answer "the executions of workflow X". Every worker therefore
follows the whole lifecycle topic into a read model (`ExecutionProjection` feeding an
`ExecutionIndex`): a local SQLite file, or one PostgreSQL database all workers share
(`braidflow.connectors.read_model_db`), and answers from there.

The index is a cache of the topic (see `braidflow.connectors.projection`).
Applying an event is idempotent and independent of order, so replays are harmless.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from aiokafka import TopicPartition

from braidflow.access import DEFAULT_TENANT
from braidflow.connectors.execution_search import ExecutionSearch, condition
from braidflow.connectors.lifecycle_feed import LifecycleFeed
from braidflow.connectors.projection import PARTITION_CHECK_S, Record, TopicProjection
from braidflow.connectors.read_model_db import (
    ReadModel,
    ReadModelLocation,
    add_missing_columns,
    given_conditions,
    json_text,
)
from braidflow.connectors.read_model_facts import SCHEMA_VERSION, fact, store_fact
from braidflow.engine.messages import LifecycleEvent
from braidflow.engine.state import ExecutionStatus, iso_time
from braidflow.kafka_connection import KafkaConnection
from braidflow.schemas import CodecError, decode_event, event_heading
from braidflow.schemas.lifecycle_events import NODE_TYPE_HEADER, lifecycle_type

log = logging.getLogger(__name__)

ACCEPTED = "workflow.accepted"
"""Written by the worker that accepted a start, before it answers with the id (see
`braidflow.schemas.lifecycle_events.accepted_event`): the execution is listed, and can be
shown, before the orchestrator gets to its start."""
STARTED = "workflow.started"
QUEUED = "workflow.queued"
"""Its department's cap made it wait for a slot (docs/departments.md); started when admitted."""
FINISHED = {
    "workflow.completed": ExecutionStatus.COMPLETED,
    "workflow.failed": ExecutionStatus.FAILED,
    "workflow.cancelled": ExecutionStatus.CANCELLED,
    "workflow.parked": ExecutionStatus.PARKED,
}
"""Lifecycle event types that end an execution (for now: a redrive may reopen it), and its status."""

REDRIVEN = "node.redriven"

NODE_STARTED = "node.started"
NODE_ENDED = frozenset({"node.completed", "node.failed", "node.cancelled", "node.skipped"})
"""Lifecycle event types after which a node no longer waits for anything."""

_VERSION = 6
"""The schema version (SQLite `user_version`, a fact on PostgreSQL). 1 added the approvals;
2 the error of a failed execution (`error`, JSON); 3 the tenant of executions and approvals;
4 the input (`input`, JSON), to search by; 5 the resumptions (events that ended `wait_event`
nodes); 6 the input as `jsonb` with a GIN index on PostgreSQL (nothing new in SQLite)."""
_READ_AGAIN_BELOW = 5
"""An index of an older version reads the topic again: its events hold what it lacks."""

WAIT_EVENT = "wait_event"
"""The node type whose `node.completed` holds the event it waited for (engine/nodes/wait_event.py)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    completed_at BIGINT,
    event_id TEXT,
    event_type TEXT,
    event_source TEXT,
    updated_at BIGINT NOT NULL,
    error TEXT,
    tenant TEXT NOT NULL DEFAULT 'default',
    input {json}
);
CREATE INDEX IF NOT EXISTS executions_by_workflow
    ON executions (workflow_id, started_at DESC, execution_id DESC);
CREATE TABLE IF NOT EXISTS approvals (
    execution_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    message TEXT NOT NULL,
    choices TEXT NOT NULL,
    department TEXT,
    timeout_at TEXT,
    requested_at BIGINT NOT NULL,
    tenant TEXT NOT NULL DEFAULT 'default',
    PRIMARY KEY (execution_id, node_id)
);
CREATE INDEX IF NOT EXISTS approvals_by_age
    ON approvals (requested_at, execution_id, node_id);
CREATE TABLE IF NOT EXISTS approvals_done (
    execution_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    PRIMARY KEY (execution_id, node_id)
);
CREATE TABLE IF NOT EXISTS resumptions (
    execution_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT,
    event_source TEXT,
    workflow_id TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    resumed_at BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    PRIMARY KEY (execution_id, node_id, event_id)
);
CREATE INDEX IF NOT EXISTS resumptions_by_age
    ON resumptions (tenant, resumed_at DESC);
CREATE INDEX IF NOT EXISTS executions_by_event
    ON executions (started_at DESC) WHERE event_id IS NOT NULL;
"""

# For a search across workflows. Made once the migrations ran: a file of version 2 has no tenant.
_BY_TENANT = (
    "CREATE INDEX IF NOT EXISTS executions_by_tenant"
    " ON executions (tenant, started_at DESC, execution_id DESC)"
)

# Named, not by position: a file migrated from an older version has its columns in the
# order they were added.
_COLUMNS = (
    "(execution_id, workflow_id, workflow_version, status, started_at, completed_at, event_id,"
    " event_type, event_source, updated_at, error, tenant, input)"
)

# An acceptance only ever adds a row: whatever was read of the execution is newer.
# Until the start, started_at holds when it was accepted.
_INSERT_ACCEPTED = f"""
INSERT INTO executions {_COLUMNS} VALUES (
    :execution_id, :workflow_id, :workflow_version, '{ExecutionStatus.ACCEPTED}', :at, NULL, NULL, NULL, NULL, :at,
    NULL, :tenant, NULL
)
ON CONFLICT (execution_id) DO NOTHING
"""

# A started event owns started_at and the trigger; it changes no status but
# 'accepted', so one replayed after the end leaves the execution finished.
_UPSERT_STARTED = f"""
INSERT INTO executions {_COLUMNS} VALUES (
    :execution_id, :workflow_id, :workflow_version, '{ExecutionStatus.RUNNING}', :at, NULL,
    :event_id, :event_type, :event_source, :at, NULL, :tenant, :input
)
ON CONFLICT (execution_id) DO UPDATE SET
    status = CASE
        WHEN executions.status IN ('{ExecutionStatus.ACCEPTED}', '{ExecutionStatus.QUEUED}')
        THEN '{ExecutionStatus.RUNNING}' ELSE executions.status END,
    workflow_id = excluded.workflow_id,
    workflow_version = excluded.workflow_version,
    started_at = excluded.started_at,
    event_id = excluded.event_id,
    event_type = excluded.event_type,
    event_source = excluded.event_source,
    input = excluded.input,
    updated_at = {{greatest}}(executions.updated_at, excluded.updated_at)
"""

# Queued only from accepted: a queued event read after its start or end changes nothing.
_UPSERT_QUEUED = f"""
INSERT INTO executions {_COLUMNS} VALUES (
    :execution_id, :workflow_id, :workflow_version, '{ExecutionStatus.QUEUED}', :at, NULL, NULL,
    NULL, NULL, :at, NULL, :tenant, NULL
)
ON CONFLICT (execution_id) DO UPDATE SET
    status = '{ExecutionStatus.QUEUED}',
    updated_at = {{greatest}}(executions.updated_at, excluded.updated_at)
WHERE executions.status = '{ExecutionStatus.ACCEPTED}'
"""

# An end arriving first creates the row with its own time as a stand-in for
# started_at, which the started event overwrites whenever it comes. Of two ends
# (a redrive in between) the later one wins, whatever order they are read in.
_UPSERT_FINISHED = f"""
INSERT INTO executions {_COLUMNS} VALUES (
    :execution_id, :workflow_id, :workflow_version, :status, :at, :at, NULL, NULL, NULL, :at,
    :error, :tenant, NULL
)
ON CONFLICT (execution_id) DO UPDATE SET
    status = excluded.status,
    completed_at = excluded.completed_at,
    error = excluded.error,
    updated_at = {{greatest}}(executions.updated_at, excluded.updated_at)
WHERE executions.completed_at IS NULL OR excluded.completed_at > executions.completed_at
"""

# A redrive after the end runs the execution again; an end after it closes it again.
_REOPEN = f"""
UPDATE executions SET status = '{ExecutionStatus.RUNNING}', completed_at = NULL, error = NULL,
    updated_at = {{greatest}}(updated_at, :at)
WHERE execution_id = :execution_id AND completed_at IS NOT NULL AND completed_at <= :at
"""

# `approvals` holds only pending approvals. What ended them is remembered so
# that a start read after its end (or replayed) stays ended: the end of a node
# in `approvals_done`, the end of an execution in its `executions` row. Rows of
# `approvals_done` are only needed while their execution runs, so its end
# deletes them and none are added afterwards.
_INSERT_APPROVAL = """
INSERT INTO approvals
SELECT :execution_id, :node_id, :workflow_id, :workflow_version, :message, :choices,
    :department, :timeout_at, :at, :tenant
WHERE NOT EXISTS (
    SELECT 1 FROM approvals_done WHERE execution_id = :execution_id AND node_id = :node_id
) AND NOT EXISTS (
    SELECT 1 FROM executions WHERE execution_id = :execution_id AND completed_at IS NOT NULL
)
ON CONFLICT (execution_id, node_id) DO NOTHING
"""

_END_NODE = (
    "DELETE FROM approvals WHERE execution_id = :execution_id AND node_id = :node_id",
    """
    INSERT INTO approvals_done
    SELECT :execution_id, :node_id
    WHERE NOT EXISTS (
        SELECT 1 FROM executions WHERE execution_id = :execution_id AND completed_at IS NOT NULL
    )
    ON CONFLICT (execution_id, node_id) DO NOTHING
    """,
)

_END_EXECUTION_APPROVALS = (
    "DELETE FROM approvals WHERE execution_id = :execution_id",
    "DELETE FROM approvals_done WHERE execution_id = :execution_id",
)


_INSERT_RESUMPTION = """
INSERT INTO resumptions VALUES (
    :execution_id, :node_id, :event_id, :event_type, :event_source, :workflow_id,
    :workflow_version, :at, :tenant
)
ON CONFLICT (execution_id, node_id, event_id) DO NOTHING
"""

# The newest starts by an event and resumptions of a tenant; `{workflows}` is replaced by a
# condition on the workflow, or by nothing.
_RECENT_STARTS = (
    "SELECT event_id, event_type, event_source, execution_id, workflow_id, workflow_version,"
    " status, started_at FROM executions WHERE tenant = ? AND event_id IS NOT NULL{workflows}"
    " ORDER BY started_at DESC, execution_id DESC LIMIT ?"
)
_RECENT_RESUMPTIONS = (
    "SELECT r.event_id, r.event_type, r.event_source, r.execution_id, r.workflow_id,"
    " r.workflow_version, e.status, r.resumed_at, r.node_id FROM resumptions r"
    " LEFT JOIN executions e ON e.execution_id = r.execution_id"
    " WHERE r.tenant = ?{workflows} ORDER BY r.resumed_at DESC, r.execution_id DESC LIMIT ?"
)

_SELECT_SUMMARY = (
    "SELECT execution_id, workflow_id, workflow_version, status, started_at,"
    " completed_at, event_id, event_type, event_source, error FROM executions"
)


_WRITE_ORDER = (
    _INSERT_ACCEPTED,
    _UPSERT_STARTED,
    _UPSERT_QUEUED,
    _UPSERT_FINISHED,
    *_END_EXECUTION_APPROVALS,
    _REOPEN,
    _INSERT_APPROVAL,
    *_END_NODE,
    _INSERT_RESUMPTION,
)
"""The order a batch's statements run in, each for all its rows: the same rows as in the
events' order. Each statement keeps the later of what it and the row hold (by time, or by
ended or not) whatever order it is applied in, but for one pair: a redrive reopens an
execution only if its last end is older, so every end of the batch is stored before its
redrives (in the events' order an end read after a later redrive would close it again)."""


def _writes(event: LifecycleEvent) -> list[tuple[str, Mapping[str, Any]]]:
    """The statements that store `event` in the index, each with its row (none for an
    event the index keeps nothing of)."""
    if event.type == ACCEPTED:
        return [(_INSERT_ACCEPTED, _finished_row(event, ExecutionStatus.ACCEPTED))]
    if event.type == STARTED:
        return [(_UPSERT_STARTED, _started_row(event))]
    if event.type == QUEUED:
        return [(_UPSERT_QUEUED, _finished_row(event, ExecutionStatus.QUEUED))]
    if event.type in FINISHED:
        row = _finished_row(event)
        return [(statement, row) for statement in (_UPSERT_FINISHED, *_END_EXECUTION_APPROVALS)]
    if event.type == REDRIVEN:
        return [(_REOPEN, {"execution_id": event.execution_id, "at": event.at})]
    if event.type == NODE_STARTED:
        approval = _approval_row(event)
        return [] if approval is None else [(_INSERT_APPROVAL, approval)]
    if event.type in NODE_ENDED:
        node = {"execution_id": event.execution_id, "node_id": event.node_id}
        writes: list[tuple[str, Mapping[str, Any]]] = [(s, node) for s in _END_NODE]
        resumption = _resumption_row(event)
        if resumption is not None:
            writes.append((_INSERT_RESUMPTION, resumption))
        return writes
    return []


class ExecutionIndex(ReadModel):
    """Executions by workflow and pending approvals, built from lifecycle events, in a SQLite
    file (a `Path`) or a PostgreSQL schema.

    Not thread-safe: use it from one thread (the worker's event loop, through `off_loop`).
    Other processes may read a SQLite file meanwhile (WAL mode).
    """

    def __init__(self, location: ReadModelLocation) -> None:
        super().__init__(location, _SCHEMA)
        db = self.db.sqlite
        if db is None:
            self._migrate_postgresql()
            return
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version < _VERSION:
            with db:
                tenant = "tenant TEXT NOT NULL DEFAULT 'default'"
                add_missing_columns(db, "executions", ["error TEXT", tenant, "input TEXT"])
                add_missing_columns(db, "approvals", [tenant])
                if version < _READ_AGAIN_BELOW:
                    # Events read before hold what this version adds (approvals, errors,
                    # inputs, resumptions): read the topic again. Rows stay, so executions
                    # whose events retention deleted are kept; applying twice changes nothing.
                    db.execute("DELETE FROM positions")
                db.execute(f"PRAGMA user_version = {_VERSION}")
        db.execute(_BY_TENANT)

    def _migrate_postgresql(self) -> None:
        """Bring a schema of an older version to this one, as the SQLite file is above."""
        db = self.db
        with db.transaction():
            # Of two workers starting at once, one migrates; the other finds it done.
            db.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
            stored = fact(db, SCHEMA_VERSION)
            version = _version_found(db.tables_found) if stored is None else int(stored)
            if version < 6:
                db.execute(
                    "ALTER TABLE executions ALTER COLUMN input TYPE jsonb USING input::jsonb"
                )
            if version < _READ_AGAIN_BELOW:
                db.execute("DELETE FROM positions")
            # jsonb_path_ops: smaller and faster than the default, and `@>` is all it serves.
            db.execute(
                "CREATE INDEX IF NOT EXISTS executions_by_input"
                " ON executions USING gin (input jsonb_path_ops)"
            )
            db.execute(_BY_TENANT)
            store_fact(db, SCHEMA_VERSION, str(_VERSION))

    def apply(self, event: LifecycleEvent) -> None:
        """Record one lifecycle event; only starts and ends of executions and approvals count."""
        self.apply_many([event])

    def apply_many(
        self,
        events: Iterable[LifecycleEvent],
        positions: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        """Record `events` and the next offsets to read (`positions`) in one transaction:
        each statement once for all the rows of the batch it writes (`_WRITE_ORDER`)."""
        rows: dict[str, list[Mapping[str, Any]]] = {statement: [] for statement in _WRITE_ORDER}
        for event in events:
            for statement, row in _writes(event):
                rows[statement].append(row)
        db = self.db
        with self.storing(positions):
            for statement, batch in rows.items():
                db.executemany(statement, batch)

    def count(self, workflow_id: str) -> int:
        """How many executions of `workflow_id` the index holds."""
        query = "SELECT count(*) FROM executions WHERE workflow_id = ?"
        (count,) = self.db.execute(query, (workflow_id,)).fetchone()
        return int(count)

    def known(self, execution_ids: Iterable[str]) -> set[str]:
        """Which of `execution_ids` the index holds."""
        ids = list(execution_ids)
        found: set[str] = set()
        for at in range(0, len(ids), 500):
            chunk = ids[at : at + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT execution_id FROM executions WHERE execution_id IN ({marks})"
            found.update(row[0] for row in self.db.execute(query, chunk))
        return found

    def list(
        self,
        workflow_id: str,
        *,
        limit: int = 50,
        status: str | None = None,
        tenant: str = DEFAULT_TENANT,
        search: ExecutionSearch | None = None,
    ) -> list[dict[str, Any]]:
        """The executions of `tenant`'s `workflow_id`, newest first, at most `limit`, that
        `search` finds (with `status`, if given, whatever `search` says of it)."""
        search = search or ExecutionSearch()
        if status is not None:
            search = replace(search, status=status)
        return self.search(limit=limit, tenant=tenant, search=search, workflows=[workflow_id])

    def search(
        self,
        *,
        limit: int = 50,
        tenant: str = DEFAULT_TENANT,
        search: ExecutionSearch | None = None,
        workflows: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """`tenant`'s executions that `search` finds, of every workflow or only of
        `workflows`, newest first, at most `limit`."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if workflows is not None and not workflows:
            return []
        found, found_params = condition(search or ExecutionSearch(), self.db.dialect)
        only = (
            "" if workflows is None else f" AND workflow_id IN ({','.join('?' * len(workflows))})"
        )
        query = f"{_SELECT_SUMMARY} WHERE tenant = ?{only}{found}"
        query += " ORDER BY started_at DESC, execution_id DESC LIMIT ?"
        rows = self.db.execute(query, (tenant, *(workflows or ()), *found_params, limit))
        return [_summary(*row) for row in rows]

    def get(self, execution_id: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
        """Execution `execution_id` as `list` shows it; None if the index does not hold it
        as one of `tenant`'s."""
        row = self.db.execute(
            f"{_SELECT_SUMMARY} WHERE execution_id = ? AND tenant = ?", (execution_id, tenant)
        )
        found = row.fetchone()
        return None if found is None else _summary(*found)

    def pending_approvals(
        self,
        *,
        workflow_id: str | None = None,
        department: str | None = None,
        limit: int = 100,
        tenant: str = DEFAULT_TENANT,
    ) -> list[dict[str, Any]]:
        """`tenant`'s approvals still waiting for an answer, oldest request first, at most
        `limit`."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = (
            "SELECT execution_id, node_id, workflow_id, workflow_version, message, choices,"
            " department, timeout_at, requested_at FROM approvals WHERE tenant = ?"
        )
        filters, params = given_conditions(
            (("workflow_id = ?", workflow_id), ("department = ?", department))
        )
        query += f"{filters} ORDER BY requested_at, execution_id, node_id LIMIT ?"
        rows = self.db.execute(query, (tenant, *params, limit))
        return [_approval(*row) for row in rows]

    def recent_events(
        self,
        *,
        limit: int = 50,
        workflows: Sequence[str] | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """`tenant`'s newest executions started by an event and newest waits an event
        resumed, at most `limit` of each, newest first; only those of `workflows` if given."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if workflows is not None and not workflows:
            return [], []
        marks = "" if workflows is None else ",".join("?" * len(workflows))
        only = list(workflows or ())
        starts = self.db.execute(
            _RECENT_STARTS.format(workflows=f" AND workflow_id IN ({marks})" if only else ""),
            (tenant, *only, limit),
        )
        started = [_triggered(row) for row in starts]
        waits = self.db.execute(
            _RECENT_RESUMPTIONS.format(
                workflows=f" AND r.workflow_id IN ({marks})" if only else ""
            ),
            (tenant, *only, limit),
        )
        resumed = [{**_triggered(row), "node_id": row[8]} for row in waits]
        return started, resumed


class ExecutionProjection(TopicProjection):
    """Follows every partition of the lifecycle topic into an `ExecutionIndex`, and into a
    `LifecycleFeed` when given one (then it wakes the feed's readers once both hold a batch).

    A record that does not decode is skipped with a warning.
    """

    def __init__(
        self,
        index: ExecutionIndex,
        connection: KafkaConnection,
        topic: str,
        fetch_max_wait_ms: int = 100,
        feed: LifecycleFeed | None = None,
        *,
        group: str | None = None,
    ) -> None:
        self._feed = feed
        # Partitions read again for the feed alone, up to the offset the index stored.
        self._feed_only: dict[TopicPartition, int] = {}
        if feed is not None:
            # Readers wait from now until the start has read again what the feed needs.
            feed.replay_begins()

        def apply(
            records: Sequence[Record],
            positions: Mapping[TopicPartition, int],
        ) -> None:
            events = []
            for record in records:
                with_data = index_reading(record)
                if with_data is not None:
                    event = _decode(record, with_data)
                    if event is not None:
                        events.append(event)
            index.apply_many(events, positions)

        super().__init__(
            index,
            apply,
            connection,
            topic,
            fetch_max_wait_ms,
            name="execution index",
            # Looked up on each construction, so tests can shorten it by patching this module.
            partition_check_s=PARTITION_CHECK_S,
            group=group,
        )

    async def start(self) -> None:
        try:
            await super().start()
        finally:
            if self._feed is not None and not self._feed_only:
                self._feed.replay_ends()

    def _reading_from(
        self, added: Iterable[TopicPartition], beginnings: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        # The feed is in memory, the index on disk (or shared): what the index stored before
        # this worker started is read again for the feed alone (see lifecycle_feed.py).
        reading = super()._reading_from(added, beginnings)
        if self._feed is None:
            return reading
        # Assigning puts every partition at its stored position: a replay under way ends.
        self._feed_only.clear()
        for tp in added:
            start = max(beginnings[tp], self._next[tp] - self._feed.total)
            if start < self._next[tp]:
                self._feed_only[tp] = self._next[tp]
                reading[tp] = start
        if not self._feed_only:
            self._feed.replay_ends()
        return reading

    async def _apply(self, batch: Mapping[TopicPartition, list[Record]]) -> None:
        # The feed takes every record this worker read, on the event loop (its readers wait
        # there), whatever part of the batch a worker sharing the index stored already.
        feed = self._feed
        touched = [] if feed is None else feed.apply(r for rs in batch.values() for r in rs)
        if self._feed_only:
            batch = self._past_replay(batch)
        if batch:
            await super()._apply(batch)
        if feed is not None:
            feed.announce(touched)

    def _past_replay(
        self, batch: Mapping[TopicPartition, list[Record]]
    ) -> dict[TopicPartition, list[Record]]:
        """The records of `batch` the index has not stored yet; ends replays read through."""
        fresh = {}
        for tp, records in batch.items():
            until = self._feed_only.get(tp, 0)
            if records and records[-1].offset + 1 >= until:
                self._feed_only.pop(tp, None)
            kept = [r for r in records if r.offset >= until]
            if kept:
                fresh[tp] = kept
        if not self._feed_only and self._feed is not None:
            self._feed.replay_ends()
        return fresh


_NODE_EVENTS = frozenset({NODE_STARTED, *NODE_ENDED})
_NODE_EVENT_TYPES = frozenset(lifecycle_type(t).encode() for t in _NODE_EVENTS)
# Approvals, for the inbox; waits for an event, for what each event resumed.
_NODE_TYPES_KEPT = frozenset({b"approval", WAIT_EVENT.encode()})
# The events whose data the index stores: a start's input and trigger, an approval's request,
# the event that completed a wait. Any other's, an end's output above all, is left unread.
_DATA_READ = frozenset({STARTED, NODE_STARTED, "node.completed"})
_DATA_READ_TYPES = frozenset(lifecycle_type(t).encode() for t in _DATA_READ)


def concerns_index(record: Record) -> bool:
    """False for the start or end of a node that is no approval nor wait for an event: the
    index keeps nothing of it (see `index_reading`)."""
    return index_reading(record) is not None


def index_reading(record: Record) -> bool | None:
    """What the index reads of `record`: None, nothing (the start or end of a node that is no
    approval nor wait for an event); else whether it reads the event's data too.

    Told by the event's type, read off the value's first fields, and for a node's event by
    the node type in the `ce_nodetype` header: the record is never decoded to find out, and
    the headers are read of node events only (made Python objects, they cost more than the
    rest of a record). A record of an older schema is told by its `ce_type` header, and one
    without `ce_type` or `ce_nodetype` (written before they existed) is decoded and looked
    at whole.
    """
    heading = None if record.value is None else event_heading(record.value)
    if heading is None:
        return _reading_by_headers(record)
    event_type = heading[1]
    if event_type in _NODE_EVENTS:
        for name, value in record.headers:
            if name == NODE_TYPE_HEADER:
                if value not in _NODE_TYPES_KEPT:
                    return None
                break
    return event_type in _DATA_READ


def _reading_by_headers(record: Record) -> bool | None:
    """`index_reading` of a record whose value is not of the current schema."""
    ce_type = node_type = None
    for name, value in record.headers:
        if name == "ce_type":
            ce_type = value
        elif name == NODE_TYPE_HEADER:
            node_type = value
    if ce_type is None:
        return True
    if node_type is not None and node_type not in _NODE_TYPES_KEPT and ce_type in _NODE_EVENT_TYPES:
        return None
    return ce_type in _DATA_READ_TYPES


def _decode(record: Record, with_data: bool) -> LifecycleEvent | None:
    if record.value is None:
        log.warning("skipping a lifecycle record with no value at %s", _where(record))
        return None
    try:
        return decode_event(record.value, with_data=with_data)
    except CodecError as exc:
        log.warning("skipping an undecodable lifecycle record at %s: %s", _where(record), exc)
        return None


def _where(record: Record) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _started_row(event: LifecycleEvent) -> dict[str, Any]:
    trigger = _trigger(event.data)
    return {
        "execution_id": event.execution_id,
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "at": event.at,
        "event_id": trigger.get("id"),
        "event_type": trigger.get("type"),
        "event_source": trigger.get("source"),
        "tenant": event.tenant,
        "input": json_text(_input(event.data)),
    }


def _finished_row(event: LifecycleEvent, status: str | None = None) -> dict[str, Any]:
    return {
        "execution_id": event.execution_id,
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "status": status or FINISHED[event.type],
        "at": event.at,
        "error": None
        if event.error is None
        else json.dumps({"type": event.error.type, "message": event.error.message}),
        "tenant": event.tenant,
    }


def _approval_row(event: LifecycleEvent) -> dict[str, Any] | None:
    """The approval a `node.started` event asks for; None when the node is no approval.

    Only approval nodes start with `{"kind": "approval", ...}` data; the other
    nodes carry their request input or nothing.
    """
    data = event.data
    if not isinstance(data, Mapping) or data.get("kind") != "approval":
        return None
    message, choices = data.get("message"), data.get("choices")
    department, timeout_at = data.get("department"), data.get("timeout_at")
    if not (
        isinstance(message, str)
        and isinstance(choices, list)
        and all(isinstance(c, str) for c in choices)
        and isinstance(department, str | None)
        and isinstance(timeout_at, str | None)
    ):
        log.warning(
            "skipping the approval of %s/%s: malformed data %r",
            event.execution_id,
            event.node_id,
            data,
        )
        return None
    return {
        "execution_id": event.execution_id,
        "node_id": event.node_id,
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "message": message,
        "choices": json.dumps(choices),
        "department": department,
        "timeout_at": timeout_at,
        "at": event.at,
        "tenant": event.tenant,
    }


def _resumption_row(event: LifecycleEvent) -> dict[str, Any] | None:
    """The event a `node.completed` of a `wait_event` node holds; None for any other end.

    Only a wait's completion carries a whole CloudEvent (`id`, `type`, `source`, ...); its
    timeout completes it with `{"timed_out": true}`, and other nodes' outputs are a
    handler's, so a completion is taken for a resumption only when its data has an event's
    `specversion`, `id` and `type`.
    """
    data = event.data
    if (
        event.type != "node.completed"
        or event.node_id is None
        or not isinstance(data, Mapping)
        or "specversion" not in data
        or not isinstance(data.get("id"), str)
        or not isinstance(data.get("type"), str)
    ):
        return None
    source = data.get("source")
    return {
        "execution_id": event.execution_id,
        "node_id": event.node_id,
        "event_id": data["id"],
        "event_type": data["type"],
        "event_source": source if isinstance(source, str) else None,
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "at": event.at,
        "tenant": event.tenant,
    }


def _version_found(tables: frozenset[str] | None) -> int:
    """The version of a PostgreSQL schema made before versions were stored there: by its
    tables (the input came with the first; the resumptions with version 5)."""
    if not tables or "executions" not in tables:
        return _VERSION
    return 5 if "resumptions" in tables else 4


def _triggered(row: Sequence[Any]) -> dict[str, Any]:
    """A `recent_events` row's event and the execution it started or resumed (its first
    eight columns, as `_RECENT_STARTS` and `_RECENT_RESUMPTIONS` both select them)."""
    return {
        "event": {"id": row[0], "type": row[1], "source": row[2]},
        "execution_id": row[3],
        "workflow_id": row[4],
        "workflow_version": row[5],
        "status": row[6],
        "at": iso_time(row[7]),
    }


def _approval(
    execution_id: str,
    node_id: str,
    workflow_id: str,
    workflow_version: int,
    message: str,
    choices: str,
    department: str | None,
    timeout_at: str | None,
    requested_at: int,
) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "node_id": node_id,
        "workflow_id": workflow_id,
        "workflow_version": workflow_version,
        "message": message,
        "choices": json.loads(choices),
        "department": department,
        "timeout_at": timeout_at,
        "requested_at": iso_time(requested_at),
    }


def _input(data: Any) -> Any:
    """The input of an execution, from `workflow.started` data (see `_trigger`)."""
    if isinstance(data, Mapping) and data.keys() == {"input", "event"}:
        return data["input"]
    return data


def _trigger(data: Any) -> Mapping[str, Any]:
    """The event that started an execution, from `workflow.started` data; empty if none.

    The data is `{"input": ..., "event": {...} | null}`. Events written before
    that carried the bare input, so anything else is read as an input and no event.
    """
    if isinstance(data, Mapping) and data.keys() == {"input", "event"}:
        event = data["event"]
        if isinstance(event, Mapping):
            return event
    return {}


def _summary(
    execution_id: str,
    workflow_id: str,
    workflow_version: int,
    status: str,
    started_at: int,
    completed_at: int | None,
    event_id: str | None,
    event_type: str | None,
    event_source: str | None,
    error: str | None,
) -> dict[str, Any]:
    if status == ExecutionStatus.ACCEPTED:
        # Not started yet: the time in started_at is when it was accepted.
        return {
            "execution_id": execution_id,
            "workflow_id": workflow_id,
            "workflow_version": workflow_version,
            "status": status,
            "accepted_at": iso_time(started_at),
            "started_at": None,
            "completed_at": None,
            "event": None,
            "error": None,
        }
    return {
        "execution_id": execution_id,
        "workflow_id": workflow_id,
        "workflow_version": workflow_version,
        "status": status,
        "started_at": iso_time(started_at),
        "completed_at": None if completed_at is None else iso_time(completed_at),
        "event": None
        if event_id is None
        else {"id": event_id, "type": event_type, "source": event_source},
        "error": None if error is None else json.loads(error),
    }
