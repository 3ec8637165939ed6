"""The event router: domain events in, executions started and waits fed.

It follows every events topic by regex (librdkafka picks up a matching topic
created later by itself, within `topic.metadata.refresh.interval.ms`; Faust's
`pattern=` subscribes to nothing) plus the lifecycle topic, so a workflow can
trigger on another's completion. For each event it starts one execution per
matching subscription, with an execution id derived from (event source, event
id, workflow): the same event delivered twice, replayed or re-read after a
crash names the same execution, and the engine ignores a start it already has.
Offsets are committed, at most once a second, only after everything the events
before them caused is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import confluent_kafka

from braidflow.config import Settings
from braidflow.engine import StartExecution
from braidflow.schemas import CodecError, decode_event, encode_transition
from braidflow.schemas.cloudevents import CloudEventError, events_topic_regex, from_kafka
from braidflow.streams.catalog import Catalog
from braidflow.streams.dead_letters import DeadLetter
from braidflow.streams.lifecycle_events import lifecycle_scope

log = logging.getLogger(__name__)

Send = Callable[[str, bytes, bytes], Awaitable[Awaitable[Any]]]
"""Queue (topic, key, value); the returned future resolves on acknowledgement."""

_NAMESPACE = uuid.UUID("6f1c1d57-6a43-4b8e-9d0e-3f0b2f3c9a11")
_BATCH = 200
_POLL_S = 0.1
# Committing after every batch put a commit request per batch on the broker while
# lifecycle records stream past; a record read again after a crash is harmless
# (starts are deduplicated by id), so commits wait this long between them.
_COMMIT_INTERVAL_S = 1.0


def _take(consumer: confluent_kafka.Consumer) -> list[Any]:
    """What is there to route: wait for one record, then take what else is ready.

    `consume(n, timeout)` waits the whole timeout for n records, which put 100 ms on
    every event at low load; this waits only while there is nothing at all.
    """
    first = consumer.consume(1, _POLL_S)
    if not first:
        return first
    return first + consumer.consume(_BATCH - 1, 0)


def execution_id_for(event: Mapping[str, Any], workflow_id: str) -> str:
    """The one execution an event starts for a workflow: the same inputs, the same id."""
    name = f"{event.get('source')}\n{event.get('id')}\n{workflow_id}"
    return uuid.uuid5(_NAMESPACE, name).hex


def event_input(event: Mapping[str, Any]) -> Any:
    """An event-started execution's input: the event's data when it is an object."""
    data = event.get("data")
    return data if isinstance(data, dict) else {}


class EventRouter:
    """Routes every record of the events topics (and the lifecycle topic) it is assigned."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        send: Send,
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        clock: Callable[[], int],
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._send = send
        self._dead_letter = dead_letter
        self._clock = clock
        self._lifecycle = settings.topics.lifecycle
        events = events_topic_regex(settings.events_prefix).removeprefix("^")
        # librdkafka refuses `(?:` in a subscription pattern; a plain group works.
        self.pattern = f"^({events.removesuffix('$')}|{re.escape(self._lifecycle)})$"
        self._consumer: confluent_kafka.Consumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self._settings
        self._consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": s.broker,
                "group.id": f"{s.prefix}-router",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": s.fetch_max_wait_ms,
                "session.timeout.ms": int(s.session_timeout_s * 1000),
                "heartbeat.interval.ms": max(int(s.session_timeout_s * 250), 100),
                # librdkafka also sends this as the group's rebalance timeout, which a join
                # may wait out in full: keep it short, and the batches (_BATCH) small.
                "max.poll.interval.ms": int(max(s.rebalance_timeout_s, 10.0) * 1000),
                # How soon a newly created events topic is picked up.
                "topic.metadata.refresh.interval.ms": 2_000,
            }
        )
        self._consumer.subscribe([self.pattern])
        self._task = asyncio.create_task(self._run(self._consumer))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
            self._consumer = None

    async def _run(self, consumer: confluent_kafka.Consumer) -> None:
        uncommitted = False
        committed_at = time.monotonic()
        while True:
            try:
                messages = await asyncio.to_thread(_take, consumer)
                acknowledgements: list[Awaitable[Any]] = []
                for message in messages:
                    acknowledgements.extend(await self._handle(message))
                # Everything read so far is acknowledged before its offset is committed.
                await asyncio.gather(*acknowledgements)
                uncommitted = uncommitted or bool(messages)
                if uncommitted and time.monotonic() - committed_at >= _COMMIT_INTERVAL_S:
                    await asyncio.to_thread(consumer.commit, asynchronous=False)
                    uncommitted, committed_at = False, time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Nothing was committed: the batch is read again, and starts dedupe by id.
                log.exception("routing events failed; retrying")
                await asyncio.sleep(1)

    async def _handle(self, message: Any) -> list[Awaitable[Any]]:
        if message.error() is not None:
            if message.error().code() != confluent_kafka.KafkaError._PARTITION_EOF:
                log.warning("event router: %s", message.error())
            return []
        try:
            event = self._event_of(message)
        except (CloudEventError, CodecError) as exc:
            await self._dead_letter(
                DeadLetter(
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    message.key(),
                    message.value(),
                    f"not a CloudEvent: {exc}",
                    self._clock(),
                )
            )
            return []
        if event is None:
            return []
        return await self.route(event)

    def _event_of(self, message: Any) -> dict[str, Any] | None:
        """The event's scope, or None for a lifecycle record no one listens to."""
        if message.topic() == self._lifecycle:
            headers = dict(message.headers() or ())
            event_type = (headers.get("ce_type") or b"").decode()
            if not self._catalog.subscriptions().may_match(event_type):
                return None
            return lifecycle_scope(decode_event(message.value()))
        return from_kafka(message.headers(), message.value()).scope()

    async def route(self, event: Mapping[str, Any]) -> list[Awaitable[Any]]:
        """Start every workflow the event triggers and feed the waits; the sends' futures."""
        sent = []
        for subscription in self._catalog.subscriptions().match(event):
            started = await self.start_execution(subscription.workflow_id, event)
            if started is not None:
                sent.append(started[1])
        if event.get("type") in self._catalog.waited_types():
            sent.append(
                await self._send(
                    self._settings.topics.waits,
                    str(event["type"]).encode(),
                    json.dumps(event, separators=(",", ":")).encode(),
                )
            )
        return sent

    async def start_execution(
        self, workflow_id: str, event: Mapping[str, Any]
    ) -> tuple[str, Awaitable[Any]] | None:
        """Send the start of `workflow_id` for `event`; (execution id, acknowledgement)."""
        deployment = self._catalog.latest(workflow_id)
        if deployment is None:
            return None
        execution_id = execution_id_for(event, workflow_id)
        start = StartExecution(
            f"{execution_id}/start",
            execution_id,
            self._clock(),
            workflow_id,
            deployment.version,
            event_input(event),
            dict(event),
        )
        acknowledged = await self._send(
            self._settings.topics.transitions, execution_id.encode(), encode_transition(start)
        )
        return execution_id, acknowledged
