"""Backfill: start a workflow for the past events of a time range, deliberately.

The router never starts a workflow for an event from before the trigger was
deployed (`topology.deployed_before`); replaying history is this, asked for by
`POST /api/v1/workflows/{id}/backfill` or `braidflow backfill`. It reads the
events topics the workflow's event triggers can match, from the first record
at or after `from` (the broker's time index, `offsets_for_times`) until past
`to`, keeps the records whose timestamps lie in the range, and matches each
event as the router does (types, department, `when`). Each match starts the
latest version under the id the router would give it
(`ids.execution_id_for`), so a backfill run twice, or over events the router
already routed, starts nothing new; `already_started` counts the matches whose
execution this worker's execution index holds (or that came twice in the
range). Domain events only: lifecycle events are not replayed.

Bounded: a range over `MAX_RANGE_MS`, or holding more than `MAX_RECORDS`
records on those topics, is refused before anything is read. Kafka is read by
a confluent-kafka consumer of its own, on a thread, one batch at a time.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import confluent_kafka

from braidflow.access import DEFAULT_TENANT
from braidflow.config import Settings
from braidflow.engine.ids import execution_id_for
from braidflow.engine.state import iso_time
from braidflow.kafka_connection import KafkaConnection
from braidflow.schemas.cloudevents import CloudEventError, events_topic_regex, from_kafka
from braidflow.schemas.record_limits import RecordTooLarge
from braidflow.streams.bulk_producer import DeliveryError
from braidflow.streams.router import record_time
from braidflow.streams.starts import Starts
from braidflow.tenants import catalog_key, events_prefix_for
from braidflow.topology import Workflow
from braidflow.topology.model import EventTrigger
from braidflow.topology.subscriptions import SubscriptionIndex

log = logging.getLogger(__name__)

MAX_RANGE_MS = 31 * 86_400_000
"""The longest range one backfill covers: 31 days."""
MAX_RECORDS = 100_000
"""The most records (of every type, on the topics read) one backfill may read."""
READ_TIMEOUT_S = 120.0
"""How long reading the range may take before the backfill gives up (nothing is lost:
run it again, what was started is not started twice)."""

_BATCH = 500
_REQUEST_TIMEOUT_S = 10.0


class BackfillRefused(Exception):
    """The range is over a limit; the message names it."""


@dataclass(frozen=True, slots=True)
class BackfillReport:
    """What one backfill found and did."""

    workflow_id: str
    from_ms: int
    to_ms: int
    read: int
    matched: int
    started: int
    already_started: int
    refused: int


def backfill_view(report: BackfillReport) -> dict[str, Any]:
    """The JSON answer of a backfill."""
    return {
        "workflow_id": report.workflow_id,
        "from": iso_time(report.from_ms),
        "to": iso_time(report.to_ms),
        "read": report.read,
        "matched": report.matched,
        "started": report.started,
        "already_started": report.already_started,
        "refused": report.refused,
    }


def event_triggers(workflow: Workflow) -> list[EventTrigger]:
    return [t for t in workflow.triggers if isinstance(t, EventTrigger)]


def range_problem(from_ms: int, to_ms: int) -> str | None:
    """Why [from_ms, to_ms] cannot be backfilled, or None."""
    if from_ms >= to_ms:
        return "from: must be before to"
    if to_ms - from_ms > MAX_RANGE_MS:
        days = (to_ms - from_ms) / 86_400_000
        return (
            f"the range covers {days:.1f} days, over the {MAX_RANGE_MS // 86_400_000} days"
            " a backfill may cover; backfill it in parts"
        )
    return None


def may_hold(triggers: Iterable[EventTrigger], segment: str) -> bool:
    """Whether the events topic of first segment `segment` may hold an event the triggers
    match. A glob whose first segment holds `*` may match across dots: every topic may."""
    for trigger in triggers:
        for glob in trigger.types:
            first = glob.split(".", 1)[0]
            if "*" in first or fnmatch.fnmatchcase(segment, first):
                return True
    return False


Plan = dict[tuple[str, int], tuple[int, int]]
"""(topic, partition) -> [first offset, end offset) to read."""


class _HistoryReader:
    """A consumer of its own over the events topics, read by time. Blocking: use a thread."""

    def __init__(self, connection: KafkaConnection) -> None:
        self._consumer = confluent_kafka.Consumer(
            connection.confluent(
                {
                    # Never joins a group (partitions are assigned) nor commits; librdkafka wants one.
                    "group.id": f"braidflow-backfill-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                }
            )
        )
        self._left: dict[tuple[str, int], int] = {}
        self._to_ms = 0

    def plan(self, pattern: str, keep: Callable[[str], bool], from_ms: int, to_ms: int) -> Plan:
        """The offsets of each partition of the topics matching `pattern` that `keep` accepts."""
        matching = re.compile(pattern).match
        topics = self._consumer.list_topics(timeout=_REQUEST_TIMEOUT_S).topics
        partitions = [
            (name, p)
            for name, meta in sorted(topics.items())
            if matching(name) is not None and keep(name)
            for p in sorted(meta.partitions)
        ]
        if not partitions:
            return {}
        starts = self._offsets_at(partitions, from_ms)
        ends = self._offsets_at(partitions, to_ms + 1)
        return {tp: (starts[tp], ends[tp]) for tp in partitions}

    def _offsets_at(self, partitions: list[tuple[str, int]], at_ms: int) -> dict[Any, int]:
        """The first offset with a timestamp at or after `at_ms`; the end when there is none."""
        asked = [confluent_kafka.TopicPartition(t, p, at_ms) for t, p in partitions]
        found = self._consumer.offsets_for_times(asked, timeout=_REQUEST_TIMEOUT_S)
        offsets = {}
        for tp in found:
            if tp.offset < 0:
                _, end = self._consumer.get_watermark_offsets(tp, timeout=_REQUEST_TIMEOUT_S)
                offsets[(tp.topic, tp.partition)] = end
            else:
                offsets[(tp.topic, tp.partition)] = tp.offset
        return offsets

    def assign(self, plan: Plan, to_ms: int) -> None:
        self._left = {tp: end for tp, (_, end) in plan.items()}
        self._to_ms = to_ms
        self._consumer.assign(
            [confluent_kafka.TopicPartition(t, p, start) for (t, p), (start, _) in plan.items()]
        )

    def next_batch(self, deadline: float) -> list[Any] | None:
        """The next records of the range; None when every partition is read past it.

        A partition is read past the range at its end (as the fetch saw it), or at a record
        both at or after the planned end offset and later than `to`: the planned end alone
        is not trusted, since producers' timestamps need not grow with offsets (and some
        brokers answer offset queries loosely).
        """
        while self._left:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"reading the range took over {READ_TIMEOUT_S:.0f} s")
            batch = []
            for message in self._consumer.consume(_BATCH, 0.5):
                tp = (message.topic(), message.partition())
                end = self._left.get(tp)
                if end is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        self._done(tp)
                    continue
                at = record_time(message)
                if message.offset() >= end and at is not None and at > self._to_ms:
                    self._done(tp)
                else:
                    batch.append(message)
            if batch:
                return batch
        return None

    def _done(self, tp: tuple[str, int]) -> None:
        """Partition `tp` is read to the range's end: what it holds after lies outside."""
        del self._left[tp]
        self._consumer.pause([confluent_kafka.TopicPartition(*tp)])

    def close(self) -> None:
        self._consumer.close()


class Backfill:
    """Starts a workflow for the events of a past time range (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        starts: Starts,
        known: Callable[[list[str]], Awaitable[set[str]]],
    ) -> None:
        self._settings = settings
        self._starts = starts
        self._known = known

    async def run(
        self, workflow: Workflow, from_ms: int, to_ms: int, tenant: str = DEFAULT_TENANT
    ) -> BackfillReport:
        """Start `tenant`'s `workflow` (latest version) once for each event of the range it
        matches on that tenant's events topics.

        BackfillRefused when the range is over a limit, TimeoutError when reading it
        takes over READ_TIMEOUT_S."""
        problem = range_problem(from_ms, to_ms)
        if problem is not None:
            raise BackfillRefused(problem)
        triggers = event_triggers(workflow)
        prefix = events_prefix_for(tenant, self._settings.events_prefix)
        reader = _HistoryReader(self._settings.kafka)
        try:
            plan = await asyncio.to_thread(
                reader.plan,
                events_topic_regex(prefix),
                lambda topic: may_hold(triggers, topic[len(prefix) :]),
                from_ms,
                to_ms,
            )
            total = sum(max(end - start, 0) for start, end in plan.values())
            if total > MAX_RECORDS:
                raise BackfillRefused(
                    f"the range holds {total:,} records on the topics the triggers read, over"
                    f" the {MAX_RECORDS:,} a backfill may read; backfill shorter ranges"
                )
            await asyncio.to_thread(reader.assign, plan, to_ms)
            return await self._read(reader, workflow, from_ms, to_ms, tenant)
        finally:
            await asyncio.to_thread(reader.close)

    async def _read(
        self, reader: _HistoryReader, workflow: Workflow, from_ms: int, to_ms: int, tenant: str
    ) -> BackfillReport:
        index = SubscriptionIndex.build([workflow])
        deadline = time.monotonic() + READ_TIMEOUT_S
        read = matched = started = already = refused = 0
        seen: set[str] = set()
        while (batch := await asyncio.to_thread(reader.next_batch, deadline)) is not None:
            read += len(batch)
            events = _matching(batch, index, workflow.id, tenant, from_ms, to_ms)
            matched += len(events)
            wanted = {e: event for e, event in events if e not in seen}
            seen.update(wanted)
            known = await self._known(list(wanted))
            already += len(events) - len(wanted) + len(known)
            acknowledgements: list[Awaitable[Any]] = []
            for execution_id, event in wanted.items():
                if execution_id in known:
                    continue
                try:
                    sent = await self._starts.start(catalog_key(tenant, workflow.id), event)
                except (DeliveryError, RecordTooLarge) as exc:
                    log.warning("backfill of %s: event %s: %s", workflow.id, event.get("id"), exc)
                    refused += 1
                    continue
                if sent is not None:
                    acknowledgements.append(sent[1])
            for outcome in await asyncio.gather(*acknowledgements, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    log.warning("backfill of %s: a start was not sent: %s", workflow.id, outcome)
                    refused += 1
                else:
                    started += 1
        return BackfillReport(workflow.id, from_ms, to_ms, read, matched, started, already, refused)


def _matching(
    batch: list[Any],
    index: SubscriptionIndex,
    workflow_id: str,
    tenant: str,
    from_ms: int,
    to_ms: int,
) -> list[tuple[str, dict[str, Any]]]:
    """(execution id, event) of each record of the range whose event `index` matches."""
    found = []
    for message in batch:
        at = record_time(message)
        if at is None or not from_ms <= at <= to_ms:
            continue
        try:
            cloud_event = from_kafka(message.headers(), message.value())
        except CloudEventError:
            # The router dead-lettered it when it came; nothing to start.
            continue
        if cloud_event.extensions.get("tenant", tenant) != tenant:
            # Another tenant's name on this tenant's topic: dead-lettered by the router too.
            continue
        event = cloud_event.scope()
        if index.match(event):
            found.append((execution_id_for(event, workflow_id, tenant), event))
    return found
