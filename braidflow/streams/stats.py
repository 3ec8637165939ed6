"""Stream analytics: the lifecycle topic folded into windowed Faust tables (docs/analytics.md).

Two stages, because a Faust table may only be written while iterating a stream of the same
key and partition count:

1. A plain consumer group (`streams/lifecycle_reader.py`, not a Faust agent: Faust's
   per-record machinery cost more than the stats themselves) takes the lifecycle topic
   (keyed by execution id) in batches (up to 1000 records or 0.1 s). What the events say
   (`schemas.stats_observations.observe`; an end carries its start, so nothing is kept per
   execution) goes on to the stats topic, re-keyed by workflow and by department, one
   record per key and minute of a batch (`Gathering`), stamped with the time of its first
   event, each observation with its lifecycle record (partition, offset). The batch's
   offsets count as done once all of it is acknowledged.
2. `stats` takes the stats topic in batches too (up to 1000 records or 1 s) and folds the
   records into one tumbling windowed table per kept window of `stats_figures.WINDOWS` (1m
   and 1h): a bucket is written once per batch, not once per record, with the position of
   the last lifecycle record it counted from each partition. Then the
   Prometheus metrics (`braidflow_stats_*`). The hopping 5m window is read by merging the five
   minutes of each of its buckets: kept as a table of its own it cost five more changelog
   records per record, for the same figures.

Every table write is a changelog record through the worker's one producer, which the
orchestrator's records wait behind: with the hopping window kept too, 100 executions of a
four-task chain took 20 s instead of 2 s.

The tables are partitioned like the stats topic: a worker holds the keys of its partitions,
and `owner` names the worker that holds a key, for the API to forward a query to (as reads
of executions are forwarded). Both stages read at least once; a bucket skips what it has
counted already (`schemas/stats_positions.py`), so a worker killed anywhere loses no event
and counts none twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import faust
import mode
from faust.types import EventT
from faust.types.windows import WindowRange_from_start

from braidflow.config import Settings
from braidflow.engine.cost import calls_models
from braidflow.metrics import STATS_DURATION, STATS_EXECUTIONS, STATS_NODE_RUNS
from braidflow.schemas import CodecError, decode_event, decode_event_outline
from braidflow.schemas.stats_figures import (
    AMOUNTS,
    QUANTILES,
    WINDOWS,
    Bucket,
    Observation,
    Window,
    fold,
    merge_all,
    quantiles,
)
from braidflow.schemas.stats_observations import (
    WORKFLOW_SCOPE,
    Gathering,
    StatsRecord,
    decode_record,
    encode_record,
    observe,
    parse_stats_key,
    used,
)
from braidflow.schemas.stats_positions import READ, unread
from braidflow.streams.app import FaustParts, rocksdb_options
from braidflow.streams.catalog import Catalog
from braidflow.streams.event_scope import acting_for
from braidflow.streams.lifecycle_reader import LifecycleReader
from braidflow.streams.partitioner import KeyPartitioner
from braidflow.tenants import catalog_key
from braidflow.topology.model import Node

log = logging.getLogger(__name__)

Queue = Callable[..., Awaitable[Awaitable[Any]]]
"""Publisher.queue: (topic, key, value, headers, timestamp_ms=) -> acknowledgement."""

# How long an event waits for this worker to read the workflow version it names.
_CATALOG_WAIT_S = 30.0
# The window whose bucket of a record the quantile gauges show.
GAUGE_WINDOW = WINDOWS["1m"]
# Stage 2 takes stats records in batches of up to this many.
_BATCH_MAX = 1000
# Records of a batch are gathered per span of this many ms: a divisor of every kept window,
# so a gathered record falls in the buckets its parts would have.
_GATHER_MS = 1000 * math.gcd(*(w.size_s for w in WINDOWS.values() if w.made_of is None))
# Stage 2 takes the stats topic in batches of up to _BATCH_MAX records or this long: stage 1
# sends a record per key about every 0.1 s while executions run, and each write of a bucket
# encodes it whole (its sketches, a few KB) into RocksDB and a changelog record, so a longer
# batch writes each bucket about ten times less often; the figures lag by as much.
_FOLD_WITHIN_S = 1.0
# Stage 2 folds the records of a batch together per key and span of this many seconds: the
# same divisor, so the records of a group fall in the same bucket of every kept window.
_FOLD_SPAN_S = _GATHER_MS // 1000


@dataclass(slots=True)
class _Slot:
    """A bucket through a batch of stage 2: as it is now, whether the batch changed it, and
    the last record that did (whose partition and time its write takes)."""

    event: EventT
    bucket: Bucket
    changed: bool = False


def _replaced(_: Bucket, bucket: Bucket) -> Bucket:
    return bucket


@dataclass(slots=True)
class _Group:
    """The observations counted from the stats records of one key, workflow, department and
    minute in a batch of stage 2, for the metrics, and the last of their records."""

    event: EventT
    workflow: str
    department: str | None
    observations: list[Observation]


_Decoded = TypeVar("_Decoded")


def _readable(
    events: Sequence[EventT],
    decode: Callable[[bytes], _Decoded],
    unreadable: type[ValueError],
    what: str,
) -> Iterator[tuple[EventT, bytes, _Decoded]]:
    """The batch's keyed, non-empty records with their decoded values; one that `decode`
    cannot read (raising `unreadable`) is logged as `what` and skipped."""
    for each in events:
        key, value = each.message.key, each.message.value
        decoded = _decoded(key, value, decode, unreadable, what)
        if decoded is not None:
            yield each, key, decoded


def _decoded(
    key: bytes | None,
    value: bytes | None,
    decode: Callable[[bytes], _Decoded],
    unreadable: type[ValueError],
    what: str,
) -> _Decoded | None:
    if key is None or not value:
        return None
    try:
        return decode(value)
    except unreadable as exc:
        log.warning("stats: skipping %s: %s", what, exc)
        return None


class Stats:
    """The stats tables of one worker, the agents that fill them, and reading them back."""

    def __init__(
        self, settings: Settings, parts: FaustParts, catalog: Catalog, queue: Queue
    ) -> None:
        self._settings = settings
        self._app = app = parts.app
        self._catalog = catalog
        self._queue = queue
        self._topic_name = settings.topics.stats
        self._partitioner = KeyPartitioner()
        options = rocksdb_options(settings)
        self.reader = LifecycleReader(settings, self.observe)
        self.topic = app.topic(
            settings.topics.stats,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )
        self.tables: dict[str, faust.Table] = {}
        self._kept = [w for w in WINDOWS.values() if w.made_of is None]
        self._windowed: dict[str, Any] = {}
        for window in self._kept:
            table = app.Table(
                f"stats-{window.name}",
                default=dict,
                key_type=str,
                partitions=settings.partitions,
                options=options,
            )
            wrapped = table.tumbling(window.size_s, expires=window.kept_s)
            self.tables[window.name] = table
            # The bucket of a record is that of its time: the lifecycle event's, not now.
            self._windowed[window.name] = wrapped.relative_to_stream()

    def attach(self) -> None:
        """Declare the fold agent and the lifecycle reader's service on the app (before it
        starts)."""
        prefix = self._settings.prefix
        reader = self.reader

        class LifecycleReading(mode.Service):
            async def on_start(self) -> None:
                await reader.start()

            async def on_stop(self) -> None:
                await reader.stop()

        self._app.service(LifecycleReading)

        @self._app.agent(self.topic, name=f"{prefix}.stats", concurrency=1)
        async def fold_stats(stream: faust.StreamT[bytes]) -> None:
            async for events in stream.take_events(_BATCH_MAX, _FOLD_WITHIN_S):
                self.fold(events)

    async def observe(self, messages: Sequence[Any]) -> None:
        """Stage 1: a batch of lifecycle records (confluent-kafka messages) into the stats
        topic, one record per stats key and minute; returns once all are acknowledged."""
        await self._catalog.ready.wait()
        # Per workflow version: its department, and its nodes that may call models.
        departments: dict[tuple[str, str, int], tuple[str | None, Mapping[str, Node]]] = {}
        gathering = Gathering(_GATHER_MS)
        for message in messages:
            # The execution index dead-letters what it cannot read; here it only goes uncounted.
            # What the stats observe is in an event's outline, but for what model calls used:
            # only the `node.completed` of a node that calls models is read whole.
            event = _decoded(
                message.key(),
                message.value(),
                decode_event_outline,
                CodecError,
                "an undecodable lifecycle record",
            )
            observations = [] if event is None else observe(event)
            if event is None or not observations:
                continue
            version = (event.tenant, event.workflow_id, event.workflow_version)
            if version not in departments:
                departments[version] = await self._department(*version)
            department, calling = departments[version]
            node = calling.get(event.node_id) if event.node_id is not None else None
            if event.type == "node.completed" and node is not None:
                whole = _decoded(
                    message.key(), message.value(), decode_event, CodecError, "a lifecycle record"
                )
                observations += [] if whole is None else used(whole, node)
            gathering.add(event, department, observations, (message.partition(), message.offset()))
        sent = [
            await self._queue(
                self._topic_name, stats_key.encode(), encode_record(record), None, timestamp_ms=at
            )
            for stats_key, at, record in gathering.records()
        ]
        await asyncio.gather(*sent)

    async def _department(
        self, tenant: str, workflow_id: str, version: int
    ) -> tuple[str | None, Mapping[str, Node]]:
        deployment = await self._catalog.wait_for(
            catalog_key(tenant, workflow_id), version, _CATALOG_WAIT_S
        )
        if deployment is None:
            return None, {}
        workflow = deployment.workflow
        calling = {n: c.node for n, c in workflow.nodes.items() if calls_models(c.node)}
        return workflow.definition.department, calling

    def fold(self, events: Sequence[EventT]) -> None:
        """Stage 2: a batch of stats records, into every window's bucket of their time (the
        record's) and the metrics. Each bucket is read once per batch, takes the observations
        of each record it has not counted yet (`stats_positions`), and is written (a
        changelog record, its position with it) and shown once per batch."""
        buckets: dict[tuple[str, str, int], _Slot] = {}
        groups: dict[tuple[str, int, str, str | None], _Group] = {}
        for each, key, record in _readable(events, decode_record, ValueError, "a stats record"):
            name = key.decode()
            timestamp_s = int(each.message.timestamp)
            counted: list[Observation] = []
            for window in self._kept:
                start = timestamp_s // window.size_s * window.size_s
                slot = buckets.get((name, window.name, start))
                if slot is None:
                    slot = _Slot(each, self._bucket(name, window, start))
                    buckets[(name, window.name, start)] = slot
                fresh, read = unread(slot.bucket, record)
                if fresh:
                    slot.bucket = {**fold(slot.bucket, fresh), READ: read}
                    slot.event, slot.changed = each, True
                if window is GAUGE_WINDOW:
                    counted = fresh
            group_key = (name, timestamp_s // _FOLD_SPAN_S, record.workflow, record.department)
            group = groups.get(group_key)
            if group is None:
                group = groups[group_key] = _Group(each, record.workflow, record.department, [])
            group.event = each
            group.observations.extend(counted)
        for (name, window_name, _), slot in buckets.items():
            if slot.changed:
                # The last record folded in names the partition and, its time in the
                # bucket, the window range.
                with acting_for(slot.event):
                    self._windowed[window_name][name].apply(_replaced, slot.bucket)
        for (name, _, _, _), group in groups.items():
            tenant, scope, _ = parse_stats_key(name)
            if scope == WORKFLOW_SCOPE and group.observations:
                record = StatsRecord(group.workflow, group.department, tuple(group.observations))
                self._count(tenant, record)
                timestamp_s = int(group.event.message.timestamp)
                start = timestamp_s // GAUGE_WINDOW.size_s * GAUGE_WINDOW.size_s
                self._gauge(tenant, record, self._bucket(name, GAUGE_WINDOW, start))

    def _count(self, tenant: str, record: StatsRecord) -> None:
        # A counter's child is looked up by its labels, which costs more than adding: once
        # per node and kind of the record, not per observation.
        department = record.department or ""
        counted = (o for o in record.observations if o.kind not in AMOUNTS)
        for (node, kind), times in Counter((o.node, o.kind) for o in counted).items():
            if node is None:
                STATS_EXECUTIONS.labels(tenant, record.workflow, department, kind).inc(times)
            else:
                STATS_NODE_RUNS.labels(tenant, record.workflow, node, kind).inc(times)

    def _gauge(self, tenant: str, record: StatsRecord, bucket: Bucket) -> None:
        """Quantiles of the minute that holds the record."""
        parts = {"": bucket} | {
            node: bucket.get("nodes", {}).get(node, {})
            for node in {o.node for o in record.observations if o.node is not None}
        }
        for node, part in parts.items():
            shown = quantiles(part.get("durations", {}))
            for label, _ in QUANTILES:
                value = shown[label]
                if value is not None:
                    STATS_DURATION.labels(tenant, record.workflow, node, label).set(value)

    def buckets(
        self, key: str, window: Window, from_ms: int, to_ms: int
    ) -> list[tuple[int, Bucket]]:
        """(start in epoch s, figures) of the buckets of `key` this worker holds that overlap
        [from_ms, to_ms), oldest first; empty ones left out."""
        base = None if window.made_of is None else WINDOWS[window.made_of]
        read: dict[int, Bucket] = {}
        found = []
        for start in window.starts(from_ms, to_ms):
            if base is None:
                bucket = self._bucket(key, window, start)
            else:
                parts = range(start, start + window.size_s, base.size_s)
                for part in parts:
                    if part not in read:
                        read[part] = self._bucket(key, base, part)
                bucket = merge_all(read[part] for part in parts)
            if bucket.get("counts"):
                found.append((start, bucket))
        return found

    def _bucket(self, key: str, window: Window, start: int) -> Bucket:
        window_range = WindowRange_from_start(float(start), float(window.size_s))
        return dict(self.tables[window.name].get((key, window_range)) or {})

    def owner(self, key: str) -> str | None:
        """The API URL of the worker that holds `key`'s figures; None when it is this one
        (or when no assignment is known yet: then this worker answers with what it has)."""
        partitions = list(range(self._settings.partitions))
        # The partition its records go to on the stats topic, and so its tables' partition.
        partition = self._partitioner(key.encode(), partitions, partitions)
        table = self.tables[GAUGE_WINDOW.name]
        try:
            hosts = self._app.router.table_metadata(table.name)
        except Exception:
            return None
        topic = table.changelog_topic.get_topic_name()
        url = next((u for u, held in hosts.items() if partition in held.get(topic, ())), None)
        own = str(self._app.conf.canonical_url).rstrip("/")
        return None if url is None or str(url).rstrip("/") == own else str(url).rstrip("/")
