"""The executions of each workflow, newest first: a SQLite read model of the lifecycle topic.

Execution state lives in the partitions of whichever workers own them, so no
single worker can answer "the executions of workflow X". Every worker therefore
follows the whole lifecycle topic into a local SQLite database
(`ExecutionProjection` feeding an `ExecutionIndex`) and answers from there.

The index is a cache of the topic: it keeps, in the same transaction as the
rows, the next offset to read of every partition, so a restart resumes exactly
where it stopped, and deleting the file only costs a re-read. Applying an
event is idempotent and independent of order, so replays are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from braidflow.engine.messages import LifecycleEvent
from braidflow.engine.state import iso_time
from braidflow.schemas import CodecError, decode_event

log = logging.getLogger(__name__)

STARTED = "workflow.started"
FINISHED = {
    "workflow.completed": "completed",
    "workflow.failed": "failed",
    "workflow.cancelled": "cancelled",
}
"""Lifecycle event types that end an execution, and the status each leaves it in."""

PARTITION_CHECK_S = 5.0
"""How often the projection looks for partitions added to the lifecycle topic."""

_POLL_TIMEOUT_MS = 1_000
_RETRY_S = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    completed_at INTEGER,
    event_id TEXT,
    event_type TEXT,
    event_source TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_workflow
    ON executions (workflow_id, started_at DESC, execution_id DESC);
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""

# A started event owns started_at and the trigger; it never touches the status,
# so one replayed after the end leaves the execution finished.
_UPSERT_STARTED = """
INSERT INTO executions VALUES (
    :execution_id, :workflow_id, :workflow_version, 'running', :at, NULL,
    :event_id, :event_type, :event_source, :at
)
ON CONFLICT (execution_id) DO UPDATE SET
    workflow_id = excluded.workflow_id,
    workflow_version = excluded.workflow_version,
    started_at = excluded.started_at,
    event_id = excluded.event_id,
    event_type = excluded.event_type,
    event_source = excluded.event_source,
    updated_at = max(updated_at, excluded.updated_at)
"""

# An end arriving first creates the row with its own time as a stand-in for
# started_at, which the started event overwrites whenever it comes. Of two ends
# the earlier one wins, so the result does not depend on the order they are read in.
_UPSERT_FINISHED = """
INSERT INTO executions VALUES (
    :execution_id, :workflow_id, :workflow_version, :status, :at, :at, NULL, NULL, NULL, :at
)
ON CONFLICT (execution_id) DO UPDATE SET
    status = excluded.status,
    completed_at = excluded.completed_at,
    updated_at = max(updated_at, excluded.updated_at)
WHERE completed_at IS NULL OR excluded.completed_at < completed_at
"""

_UPSERT_POSITION = """
INSERT INTO positions VALUES (?, ?, ?)
ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset
"""


class ExecutionIndex:
    """Executions by workflow in a SQLite file, built from lifecycle events.

    Not thread-safe: use it from one thread (the worker's event loop). Other
    processes may read the file meanwhile (WAL mode).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode = WAL")
        # Safe in WAL mode: a crash can lose the last transactions, but never
        # rows without their offsets, so the lost part is simply read again.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def apply(self, event: LifecycleEvent) -> None:
        """Record one lifecycle event; events that do not start or end an execution are ignored."""
        self.apply_many([event])

    def apply_many(
        self,
        events: Iterable[LifecycleEvent],
        positions: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        """Record `events` and the next offsets to read (`positions`) in one transaction."""
        with self._db:
            for event in events:
                if event.type == STARTED:
                    self._db.execute(_UPSERT_STARTED, _started_row(event))
                elif event.type in FINISHED:
                    self._db.execute(_UPSERT_FINISHED, _finished_row(event))
            if positions:
                self._db.executemany(
                    _UPSERT_POSITION,
                    [(tp.topic, tp.partition, offset) for tp, offset in positions.items()],
                )

    def positions(self) -> dict[TopicPartition, int]:
        """The next offset to read of every partition the index was built from."""
        rows = self._db.execute("SELECT topic, partition, next_offset FROM positions")
        return {TopicPartition(topic, partition): offset for topic, partition, offset in rows}

    def reset(self) -> None:
        """Forget every execution and position, to rebuild the index from the start of the topic."""
        with self._db:
            self._db.execute("DELETE FROM executions")
            self._db.execute("DELETE FROM positions")

    def count(self, workflow_id: str) -> int:
        """How many executions of `workflow_id` the index holds."""
        query = "SELECT count(*) FROM executions WHERE workflow_id = ?"
        (count,) = self._db.execute(query, (workflow_id,)).fetchone()
        return int(count)

    def list(
        self, workflow_id: str, *, limit: int = 50, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The executions of `workflow_id`, newest first, at most `limit`, with `status` if given."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = (
            "SELECT execution_id, workflow_id, workflow_version, status, started_at,"
            " completed_at, event_id, event_type, event_source"
            " FROM executions WHERE workflow_id = ?"
        )
        params: tuple[Any, ...] = (workflow_id,)
        if status is not None:
            query += " AND status = ?"
            params += (status,)
        query += " ORDER BY started_at DESC, execution_id DESC LIMIT ?"
        rows = self._db.execute(query, (*params, limit))
        return [_summary(*row) for row in rows]


class ExecutionProjection:
    """Follows every partition of the lifecycle topic into an `ExecutionIndex`.

    No consumer group: every worker reads all partitions, from the positions
    stored in the index. Partitions added to the topic later are picked up
    within `PARTITION_CHECK_S`. A record that does not decode is skipped with a
    warning; a read model must never stall on one.
    """

    def __init__(
        self, index: ExecutionIndex, broker: str, topic: str, fetch_max_wait_ms: int = 100
    ) -> None:
        self._index = index
        self._broker = broker
        self._topic = topic
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._loop: asyncio.Task[None] | None = None
        self._next: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()

    async def start(self) -> None:
        """Connect and start following the topic from the stored positions."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._broker,
            group_id=None,
            client_id=f"{self._topic}-execution-index",
            enable_auto_commit=False,
            # Used only when retention deleted records not yet read: take what is left.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            # Refreshing metadata this often is how new partitions become visible.
            metadata_max_age_ms=int(PARTITION_CHECK_S * 1000),
        )
        await consumer.start()
        self._consumer = consumer
        try:
            await self._follow_new_partitions(consumer)
        except Exception:
            await consumer.stop()
            self._consumer = None
            raise
        self._loop = asyncio.create_task(self._poll(consumer))

    async def stop(self) -> None:
        """Stop reading; everything applied so far is stored with its positions."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def wait_caught_up(self, timeout_s: float) -> bool:
        """Whether, within `timeout_s`, the index has read up to the end offsets of now.

        Counts the partitions followed at the call: true at once while the topic
        does not exist yet.
        """
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("the execution projection is not started")
        partitions = list(self._next)
        ends = await consumer.end_offsets(partitions) if partitions else {}

        def caught_up() -> bool:
            return all(self._next.get(tp, 0) >= end for tp, end in ends.items())

        try:
            async with asyncio.timeout(timeout_s), self._progress:
                await self._progress.wait_for(caught_up)
        except TimeoutError:
            return False
        return True

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        loop = asyncio.get_running_loop()
        next_check = loop.time() + PARTITION_CHECK_S
        while True:
            try:
                if loop.time() >= next_check:
                    next_check = loop.time() + PARTITION_CHECK_S
                    await self._follow_new_partitions(consumer)
                if not self._next:
                    await asyncio.sleep(PARTITION_CHECK_S)
                    continue
                batch = await consumer.getmany(timeout_ms=_POLL_TIMEOUT_MS)
                if batch:
                    self._apply(batch)
            except Exception:
                # The loop must outlive a broker or disk hiccup; whatever was read
                # but not stored is read again from the stored positions.
                log.exception("following %s failed; retrying", self._topic)
                await asyncio.sleep(_RETRY_S)
                with contextlib.suppress(Exception):
                    for tp, offset in self._next.items():
                        consumer.seek(tp, offset)
                continue
            async with self._progress:
                self._progress.notify_all()

    def _apply(self, batch: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        events: list[LifecycleEvent] = []
        positions: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            for record in records:
                event = _decode(record)
                if event is not None:
                    events.append(event)
            if records:
                positions[tp] = records[-1].offset + 1
        self._index.apply_many(events, positions)
        self._next.update(positions)

    async def _follow_new_partitions(self, consumer: AIOKafkaConsumer) -> None:
        """Assign every partition of the topic, reading each from its stored position."""
        found = consumer.partitions_for_topic(self._topic) or set()
        partitions = {TopicPartition(self._topic, p) for p in found}
        added = partitions - self._next.keys()
        if not added:
            return
        beginnings = await consumer.beginning_offsets(list(added))
        stored = self._index.positions()
        if not self._next and await self._built_from_another_log(consumer, stored, partitions):
            log.warning(
                "the execution index at hand was not built from %s as it is now"
                " (another topic, or the topic was recreated); rebuilding it",
                self._topic,
            )
            self._index.reset()
            stored = {}
        # assign() replaces the whole assignment, and with it every fetch position.
        consumer.assign(sorted(partitions))
        for tp in added:
            self._next[tp] = max(stored.get(tp, 0), beginnings[tp])
        for tp, offset in self._next.items():
            consumer.seek(tp, offset)
        log.info("following %d partitions of %s", len(partitions), self._topic)

    async def _built_from_another_log(
        self,
        consumer: AIOKafkaConsumer,
        stored: Mapping[TopicPartition, int],
        partitions: set[TopicPartition],
    ) -> bool:
        if any(tp.topic != self._topic for tp in stored):
            return True
        ends = await consumer.end_offsets(list(partitions))
        # Past the end: the log was recreated (or truncated) since the index read it.
        return any(offset > ends.get(tp, 0) for tp, offset in stored.items())


def _decode(record: ConsumerRecord[bytes, bytes]) -> LifecycleEvent | None:
    if record.value is None:
        log.warning("skipping a lifecycle record with no value at %s", _where(record))
        return None
    try:
        return decode_event(record.value)
    except CodecError as exc:
        log.warning("skipping an undecodable lifecycle record at %s: %s", _where(record), exc)
        return None


def _where(record: ConsumerRecord[bytes, bytes]) -> str:
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
    }


def _finished_row(event: LifecycleEvent) -> dict[str, Any]:
    return {
        "execution_id": event.execution_id,
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "status": FINISHED[event.type],
        "at": event.at,
    }


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
) -> dict[str, Any]:
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
    }
