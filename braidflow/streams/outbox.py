"""The outbox: what a step emitted, kept with the state until the broker has it.

Faust writes a table row to local RocksDB at once and to the changelog and
the output topics through one buffered producer. A worker killed in between
can leave the state of a step durable while its outputs are lost; the
transition is then delivered again, but the engine, seeing it already
applied, emits nothing. So each stored state carries the records its recent
steps emitted that this worker has not seen acknowledged, and a transition the
engine ignores sends them again. Duplicates are harmless: every consumer of
these records is idempotent by id.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from braidflow.config import Topics
from braidflow.engine import (
    AdmissionReleased,
    AdmissionRequested,
    AwaitEvent,
    DeadLetterNode,
    LifecycleEvent,
    Outgoing,
    PublishEvent,
    TaskRequest,
)
from braidflow.engine.state import iso_time
from braidflow.engine.trace_context import HEADER
from braidflow.schemas import (
    OutboxEntry,
    encode_await,
    encode_event,
    encode_task,
    encode_transition,
)
from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for
from braidflow.schemas.codec import encode_admission
from braidflow.schemas.dead_letters import encode_node_letter
from braidflow.schemas.lifecycle_events import lifecycle_headers
from braidflow.streams.quick_send import Acknowledgement
from braidflow.tenants import events_prefix_for, wait_key

Headers = list[tuple[str, bytes]]
ProducerSend = Callable[[str, bytes, bytes, Headers | None], Awaitable[Awaitable[Any]]]
"""Queue (topic, key, value, headers) for sending; the future resolves on acknowledgement."""
SendNow = Callable[[str, bytes, bytes, Headers | None, Acknowledgement, Any], bool]
"""Append (topic, key, value, headers) to the producer's open batch with no future of its own,
telling the `Acknowledgement` (with the argument given) once acknowledged; False when it must
go through `ProducerSend` (`Publisher.sends_now`'s)."""
SendsNow = Callable[[], SendNow | None]
"""A `SendNow` for records sent with nothing awaited between them, None when each must go
through `ProducerSend` (`Publisher.sends_now`)."""


def _none_now() -> None:
    """No `SendNow`: every record goes through `ProducerSend`."""


_STRUCTURED_HEADERS = to_structured(CloudEvent("-", "-", "-"))[0]


def published_event(message: PublishEvent, traceparent: str | None = None) -> CloudEvent:
    """The CloudEvent a `publish` node sends: its id is stable, so a resend is the same event.

    `traceparent` (the publishing node run's span) goes in the CloudEvents `traceparent`
    extension, so an execution the event starts joins the trace.
    """
    return CloudEvent(
        id=message.id,
        source=f"/braidflow/workflows/{message.workflow_id}",
        type=message.type,
        subject=message.subject,
        time=iso_time(message.at),
        datacontenttype="application/json",
        data=message.data,
        extensions={} if traceparent is None else {HEADER: traceparent},
    )


def outbox_entry(
    message: Outgoing, events_prefix: str, execution_id: str, traceparent: str | None = None
) -> OutboxEntry:
    """The encoded form of one outgoing message of a step of `execution_id`; `traceparent`
    is its record header (`engine.trace_context.record_traceparent`)."""
    tp = traceparent
    if isinstance(message, TaskRequest):
        return OutboxEntry("task", message.idempotency_key, encode_task(message), traceparent=tp)
    if isinstance(message, LifecycleEvent):
        return OutboxEntry("event", message.id, encode_event(message), traceparent=tp)
    if isinstance(message, AwaitEvent):
        key = wait_key(message.tenant, message.event_type).encode()
        return OutboxEntry("await", message.id, encode_await(message), key=key, traceparent=tp)
    if isinstance(message, DeadLetterNode):
        return OutboxEntry("dead_letter", message.id, encode_node_letter(message), traceparent=tp)
    if isinstance(message, AdmissionRequested | AdmissionReleased):
        # Keyed by department: one partition orders all of one department's requests.
        key = message.key.encode()
        return OutboxEntry("admission", message.id, encode_admission(message), None, key, tp)
    if isinstance(message, PublishEvent):
        _, value = to_structured(published_event(message, tp))
        key = (message.subject or message.execution_id).encode()
        # The tenant's own topic: a publish node never reaches another tenant's events.
        topic = topic_for(message.type, events_prefix_for(message.tenant, events_prefix))
        return OutboxEntry("publish", message.id, value, topic, key, tp)
    # A transition for another execution (a child's start, a parent's notice) goes
    # under that execution's key, so it reaches the partition that holds it.
    key = None if message.execution_id == execution_id else message.execution_id.encode()
    return OutboxEntry(
        "transition", message.id, encode_transition(message), key=key, traceparent=tp
    )


ACKNOWLEDGED_BYTES = 8 * 1024 * 1024
"""Memory the acknowledged ids may take (about 40,000 ids): 200,000 of them took 36 MiB."""
_ID_OVERHEAD = 90
"""Bytes an id takes in `Acknowledged` besides its string, at most: its place in the deque and
in the set (a power of two of slots: 1.7 to 5 of 16 B an id)."""


def _held_bytes(record_id: str) -> int:
    return sys.getsizeof(record_id) + _ID_OVERHEAD


class Acknowledged:
    """Ids of records the broker acknowledged, the newest of them: as many as take about
    `capacity_bytes`.

    Forgetting an old id costs at most one harmless resend, so memory stays bounded.
    Bounded by bytes, not ids: an id's size is its execution's.
    """

    def __init__(self, capacity_bytes: int = ACKNOWLEDGED_BYTES) -> None:
        # Oldest first; a deque and a set take half the memory of an OrderedDict.
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._bytes = 0
        self._capacity_bytes = capacity_bytes

    def add(self, record_id: str) -> None:
        if record_id in self._ids:
            return
        self._order.append(record_id)
        self._ids.add(record_id)
        self._bytes += _held_bytes(record_id)
        while self._bytes > self._capacity_bytes and self._order:
            forgotten = self._order.popleft()
            self._ids.discard(forgotten)
            self._bytes -= _held_bytes(forgotten)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ids

    def pending(self, entries: Iterable[OutboxEntry]) -> tuple[OutboxEntry, ...]:
        """The entries not acknowledged yet."""
        return tuple(e for e in entries if e.id not in self._ids)


class Outbox:
    """Sends outbox entries to their topics and records their acknowledgements."""

    def __init__(
        self,
        topics: Topics,
        send: ProducerSend,
        ensure_topic: Callable[[str], Awaitable[None]] | None = None,
        sends_now: SendsNow | None = None,
    ) -> None:
        # Called before a send to an events topic, which nothing else may have created.
        self._ensure_topic = ensure_topic
        self._topic_of = {
            "transition": topics.transitions,
            "task": topics.tasks,
            "event": topics.lifecycle,
            "await": topics.waits,
            "dead_letter": topics.dead_letters,
            "admission": topics.admissions,
        }
        self._send = send
        self._sends_now = sends_now
        self.acknowledged = Acknowledged()
        # Given (key, value) of each task request as it is sent: this worker's executor may
        # run it at once (`Executor.run_here`); the record is sent all the same.
        self.on_task: Callable[[bytes, bytes], object] | None = None

    async def send(
        self,
        key: bytes,
        entries: Iterable[OutboxEntry],
        node_types: Mapping[str, str] | None = None,
    ) -> None:
        """Queue every entry; acknowledgements arrive in the background.

        `node_types` (node id to type, of the execution's workflow) labels node events.
        """
        sends_now, acknowledged_now = self._sends_now or _none_now, self._acknowledged_now
        topic_of, on_task = self._topic_of, self.on_task
        # Taken once for the records that follow, and again after anything awaited.
        send_now = sends_now()
        for entry in entries:
            kind, record_key, traceparent = entry.kind, entry.key or key, entry.traceparent
            if kind == "event":
                headers: Headers | None = lifecycle_headers(entry.id, key, node_types)
                if traceparent is not None:
                    headers.append((HEADER, traceparent.encode()))  # a list of its own
            else:
                headers = _STRUCTURED_HEADERS if kind == "publish" else None
                if traceparent is not None:
                    headers = [*(headers or ()), (HEADER, traceparent.encode())]
            if kind == "task" and on_task is not None:
                # Before it is queued, so that the executor cannot read it back first.
                on_task(record_key, entry.value)
            topic = entry.topic or topic_of[kind]
            if kind == "publish" and self._ensure_topic is not None:
                await self._ensure_topic(topic)
                send_now = sends_now()
            if send_now is not None and send_now(
                topic, record_key, entry.value, headers, acknowledged_now, entry.id
            ):
                continue
            future = await self._send(topic, record_key, entry.value, headers)
            future.add_done_callback(self._on_done(entry.id))  # type: ignore[attr-defined]
            send_now = sends_now()

    def _acknowledged_now(self, record_id: str, partition: int, offset: int, at: int) -> None:
        self.acknowledged.add(record_id)

    def _on_done(self, record_id: str) -> Callable[[Any], None]:
        def done(future: Any) -> None:
            if not future.cancelled() and future.exception() is None:
                self.acknowledged.add(record_id)

        return done
