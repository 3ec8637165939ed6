"""The event router: domain events in, executions started and waits fed.

It follows every events topic by regex (librdkafka picks up a matching topic
created later by itself, within `topic.metadata.refresh.interval.ms`; Faust's
`pattern=` subscribes to nothing). It follows the lifecycle topic too, so a
workflow can trigger on another's completion, but only while some deployed
trigger may match a `braidflow.` type: every step of every execution writes
to that topic, and reading it all for nothing cost the broker a fifth of its
work per transition. An event triggers a workflow only when the version
carrying that trigger was deployed before the event happened
(`topology.deployed_before`): a new deployment is not started by the history
its topics hold, nor by the lifecycle backlog read when following resumes.
A domain event's time is its record timestamp, compared with the deployment's
record timestamp, `event_clock_skew_s` allowed for the producer's clock; a
lifecycle event's is its own `at`, compared with `deployed_at`, both stamped by
braidflow's workers. For each event it starts one execution per
matching subscription (`starts.Starts`: once per event and workflow, however
often the event is read).
Offsets are committed, at most once a second, only after everything the events
before them caused is acknowledged.

Tenants: the router follows every tenant's events topics (`braidflow.tenants`). The tenant
of a domain event is the one its topic names, never anything the event says: an event
whose `tenant` extension names another goes to the dead letters, as does one on a
`tenants.default.*` topic. A lifecycle event belongs to its execution's tenant. An event
is matched against its tenant's triggers and waits only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import confluent_kafka

from braidflow.access import DEFAULT_TENANT
from braidflow.batch_take import BatchTake
from braidflow.config import Settings
from braidflow.engine.trace_context import HEADER as TRACEPARENT
from braidflow.engine.trace_context import valid_traceparent
from braidflow.fetch_stall import StallWatch, longer_wait, stalled
from braidflow.schemas import CodecError, decode_event
from braidflow.schemas.cloudevents import CloudEventError, from_kafka
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.schemas.department_alerts import BUS_TYPES
from braidflow.schemas.lifecycle_events import LIFECYCLE_SEGMENT, lifecycle_scope
from braidflow.schemas.record_limits import RecordTooLarge
from braidflow.streams.bulk_producer import DeliveryError
from braidflow.streams.catalog import Catalog
from braidflow.streams.group_errors import FATAL_GROUP_ERRORS
from braidflow.streams.starts import Send, Starts
from braidflow.tenants import (
    TenantTopicError,
    catalog_key,
    events_topics_regex,
    tenant_of_topic,
    wait_key,
)
from braidflow.topology.deployed_before import happened_after, waited_for
from braidflow.topology.limits import LimitError
from braidflow.topology.subscriptions import Subscription

log = logging.getLogger(__name__)

_BATCH = 200
# How long a take waits in its thread while a commit is pending, and while nothing is:
# each wait that ends empty is a round trip through the event loop, ten a second at 0.1 s.
_POLL_S = 0.1
_IDLE_POLL_S = 1.0
# Committing after every batch put a commit request per batch on the broker while
# lifecycle records stream past; a record read again after a crash is harmless
# (starts are deduplicated by id), so commits wait this long between them.
_COMMIT_INTERVAL_S = 1.0
# Sends in flight before the router waits for them, whether a commit is due or not.
_UNSETTLED_MAX = 20_000


@dataclass(frozen=True, slots=True)
class Happened:
    """When an event happened (None: unknown), whether on a lifecycle event's clock, and in
    which tenant."""

    at: int | None
    lifecycle: bool = False
    tenant: str = DEFAULT_TENANT


def record_time(message: Any) -> int | None:
    """A Kafka record's timestamp (create or log-append time), None when it has none."""
    kind, at = message.timestamp()
    return None if kind == confluent_kafka.TIMESTAMP_NOT_AVAILABLE or at < 0 else int(at)


def _commit(consumer: confluent_kafka.Consumer) -> None:
    """Commit what was read; nothing to commit (a rebalance took the partitions) is no error."""
    try:
        consumer.commit(asynchronous=False)
    except confluent_kafka.KafkaException as exc:
        if exc.args[0].code() != confluent_kafka.KafkaError._NO_OFFSET:
            raise


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
        self._starts = Starts(
            settings.topics.transitions, catalog, send, clock, settings.max_value_bytes
        )
        self._send = send
        self._dead_letter = dead_letter
        self._clock = clock
        self._lifecycle = settings.topics.lifecycle
        # Told when the broker refuses the router's group for good (group id, error code).
        self.on_refusal: Callable[[str, int], None] = lambda group, code: None
        self._events_pattern = events_topics_regex(settings.events_prefix)
        self._skew_ms = int(settings.event_clock_skew_s * 1000)
        self._keep_ms = int(settings.event_ttl_s * 1000)
        self._following_lifecycle = False
        # Topics of the partitions assigned now; set by librdkafka's rebalance callbacks,
        # which run on whichever thread is consuming.
        self._assigned: frozenset[str] = frozenset()
        self._consumer: confluent_kafka.Consumer | None = None
        # Longer after a stall on the embedded broker (`fetch_stall`).
        self._fetch_wait_ms = settings.fetch_max_wait_ms
        self._stall = StallWatch()
        self._task: asyncio.Task[None] | None = None
        self._takes = BatchTake(_BATCH)
        # Takes that waited in a thread; while no event flows, about one a second.
        self.waits = 0

    def join(self) -> confluent_kafka.Consumer:
        """Subscribe, without routing yet: librdkafka's threads join the group meanwhile.

        Dev mode joins before the worker starts, so that the join overlaps the worker's
        own; `start` joins when this did not. Records are read once `start` routes them.
        """
        if self._consumer is not None:
            return self._consumer
        s = self._settings
        consumer = confluent_kafka.Consumer(
            s.confluent_group(
                f"{s.prefix}-router",
                self._fetch_wait_ms,
                # How soon a newly created events topic is picked up.
                {"topic.metadata.refresh.interval.ms": 2_000},
            )
        )
        self._following_lifecycle = self._lifecycle_wanted()
        self._subscribe(consumer)
        self._consumer = consumer
        return consumer

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(self.join()))

    async def stop(self) -> None:
        await self._takes.stop(self._task)
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
            self._consumer = None

    def _subscribe(self, consumer: confluent_kafka.Consumer) -> None:
        def assigned(_: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
            self._assigned = frozenset(p.topic for p in partitions)

        def revoked(_: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
            self._assigned = frozenset()

        consumer.subscribe(
            [self._pattern()], on_assign=assigned, on_revoke=revoked, on_lost=revoked
        )

    async def following(self, topics: Iterable[str], timeout_s: float) -> bool:
        """Wait until this router is assigned partitions of every topic in `topics`.

        For a lone worker (dev mode), which is assigned every partition: an events topic
        created after the router subscribed is followed only after the router's next
        metadata refresh and a rebalance, a few seconds that a first event would wait out.
        False if that takes longer than `timeout_s`.
        """
        wanted = frozenset(topics)
        deadline = time.monotonic() + timeout_s
        while not wanted <= self._assigned:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def _lifecycle_wanted(self) -> bool:
        # A department alert shares the lifecycle's first segment but travels on the bus.
        return any(
            self._catalog.subscriptions(tenant).listens_under(LIFECYCLE_SEGMENT, BUS_TYPES)
            for tenant in self._catalog.tenants()
        )

    def _pattern(self) -> str:
        """The subscription: the events topics, and the lifecycle topic while it is followed."""
        if not self._following_lifecycle:
            return self._events_pattern
        events = self._events_pattern.removeprefix("^").removesuffix("$")
        # librdkafka refuses `(?:` in a subscription pattern; a plain group works.
        return f"^({events}|{re.escape(self._lifecycle)})$"

    async def _follow_lifecycle_as_needed(self, consumer: confluent_kafka.Consumer) -> None:
        """Subscribe again when a deployment or removal changed whether a trigger needs it."""
        wanted = self._lifecycle_wanted()
        if wanted != self._following_lifecycle:
            self._following_lifecycle = wanted
            log.info("event router: %s the lifecycle topic", "following" if wanted else "leaving")
            await asyncio.to_thread(self._subscribe, consumer)

    async def _run(self, consumer: confluent_kafka.Consumer) -> None:
        # The next batch is read while the sends of the previous ones are still on their
        # way: waiting for them batch by batch left the router idle a round trip each
        # time. Everything read is acknowledged before its offset is committed, and a
        # failure rewinds to the first record not committed (starts dedupe by id).
        unsettled: list[Awaitable[Any]] = []
        rewind: dict[tuple[str, int], int] = {}
        committed_at = time.monotonic()
        while True:
            try:
                await self._follow_lifecycle_as_needed(consumer)
                # What librdkafka has already fetched is taken on the spot: a hop to a thread
                # and back per batch put the router behind every busy task of the loop.
                messages = consumer.consume(_BATCH, 0) or await self._wait_for_records(
                    consumer, _POLL_S if rewind or unsettled else _IDLE_POLL_S
                )
                if stalled(self._stall, consumer, time.monotonic(), bool(messages)):
                    consumer = await self._with_longer_wait(consumer, unsettled, rewind)
                    continue
                if messages:
                    # An event published after a deploy was answered must meet its triggers.
                    await self._catalog.catch_up()
                for message in messages:
                    # An error (a subscribed pattern matching no topic yet) moves no offset.
                    if message.error() is None:
                        rewind.setdefault((message.topic(), message.partition()), message.offset())
                    unsettled.extend(await self._handle(message))
                due = time.monotonic() - committed_at >= _COMMIT_INTERVAL_S
                if due or len(unsettled) >= _UNSETTLED_MAX:
                    await asyncio.gather(*unsettled)
                    unsettled.clear()
                if due and rewind:
                    await asyncio.to_thread(_commit, consumer)
                    rewind.clear()
                    committed_at = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing events failed; reading again what is not committed")
                await asyncio.sleep(1)
                unsettled.clear()
                with contextlib.suppress(confluent_kafka.KafkaException):
                    for (topic, partition), offset in rewind.items():
                        consumer.seek(confluent_kafka.TopicPartition(topic, partition, offset))
                rewind.clear()

    async def _with_longer_wait(
        self,
        consumer: confluent_kafka.Consumer,
        unsettled: list[Awaitable[Any]],
        rewind: dict[tuple[str, int], int],
    ) -> confluent_kafka.Consumer:
        """The router's consumer made again with a longer fetch wait, after everything read
        is acknowledged and committed: the new one starts from the commits."""
        wait = longer_wait(self._fetch_wait_ms)
        if wait is None:
            return consumer
        await asyncio.gather(*unsettled)
        unsettled.clear()
        if rewind:
            await asyncio.to_thread(_commit, consumer)
            rewind.clear()
        log.warning(
            "event router: fetches at %d ms bring no records the broker has; waiting %d ms",
            self._fetch_wait_ms,
            wait,
        )
        self._consumer = None
        await asyncio.to_thread(consumer.close)
        self._fetch_wait_ms = wait
        return self.join()

    async def _wait_for_records(
        self, consumer: confluent_kafka.Consumer, wait_s: float
    ) -> list[Any]:
        """A take that waits in a thread (`batch_take`), counted."""
        self.waits += 1
        return await self._takes.wait(consumer, wait_s)

    async def _handle(self, message: Any) -> list[Awaitable[Any]]:
        if message.error() is not None:
            code = message.error().code()
            if code == confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:
                # The pattern matches no events topic yet: normal until the first event.
                log.debug("event router: %s", message.error())
            elif code in FATAL_GROUP_ERRORS:
                self.on_refusal(f"{self._settings.prefix}-router", code)
            elif code != confluent_kafka.KafkaError._PARTITION_EOF:
                log.warning("event router: %s", message.error())
            return []
        try:
            event, happened = self._event_of(message)
        except (CloudEventError, CodecError, LimitError) as exc:
            await self._dead_letter(self._letter(message, f"not a CloudEvent: {exc}"))
            return []
        except TenantTopicError as exc:
            await self._dead_letter(self._letter(message, str(exc)))
            return []
        if event is None:
            return []
        try:
            return await self.route(event, happened)
        except (DeliveryError, RecordTooLarge) as exc:
            # A start no broker takes (too large) would stop the router on every retry.
            reason = f"cannot start what the event triggers: {exc}"
            await self._dead_letter(self._letter(message, reason))
            return []

    def _letter(self, message: Any, reason: str) -> DeadLetter:
        return DeadLetter(
            message.topic(),
            message.partition(),
            message.offset(),
            message.key(),
            message.value(),
            reason,
            self._clock(),
        )

    def _event_of(self, message: Any) -> tuple[dict[str, Any] | None, Happened]:
        """The event's scope (None for a lifecycle record no one listens to), and when it
        happened."""
        if message.topic() == self._lifecycle:
            headers = dict(message.headers() or ())
            event_type = (headers.get("ce_type") or b"").decode()
            if not any(
                self._catalog.subscriptions(tenant).may_match(event_type)
                for tenant in self._catalog.tenants()
            ):
                return None, Happened(None, lifecycle=True)
            lifecycle = decode_event(message.value())
            # Written by braidflow's workers alone: the execution's own tenant.
            happened = Happened(lifecycle.at, lifecycle=True, tenant=lifecycle.tenant)
            scope = lifecycle_scope(lifecycle)
            # The execution's span: what the event starts continues its trace.
            traceparent = valid_traceparent((headers.get(TRACEPARENT) or b"").decode("latin-1"))
            if traceparent is not None:
                scope[TRACEPARENT] = traceparent
            return scope, happened
        tenant = tenant_of_topic(message.topic(), self._settings.events_prefix)
        event = from_kafka(message.headers(), message.value())
        claimed = event.extensions.get("tenant")
        if claimed is not None and claimed != tenant:
            raise TenantTopicError(
                f"the event's tenant extension says {claimed!r}, but its topic"
                f" {message.topic()!r} is tenant {tenant!r}'s"
            )
        return event.scope(), Happened(record_time(message), tenant=tenant)

    async def route(self, event: Mapping[str, Any], happened: Happened) -> list[Awaitable[Any]]:
        """Start every workflow the event triggers and feed the waits; the sends' futures."""
        sent = []
        tenant = happened.tenant
        for subscription in self._catalog.subscriptions(tenant).match(event):
            key = catalog_key(tenant, subscription.workflow_id)
            if not self._deployed_before(key, subscription, happened):
                continue
            started = await self._starts.start(key, event)
            if started is not None:
                sent.append(started[1])
        if self._waited(event.get("type"), happened):
            sent.append(
                await self._send(
                    self._settings.topics.waits,
                    wait_key(tenant, str(event["type"])).encode(),
                    json.dumps(event, separators=(",", ":")).encode(),
                )
            )
        return sent

    def _deployed_before(self, key: str, subscription: Subscription, happened: Happened) -> bool:
        since = self._catalog.trigger_deployed(key, subscription.trigger)
        if since is None:
            return False
        if happened.lifecycle:
            return happened_after(happened.at, since.deployed_at, 0)
        return happened_after(happened.at, since.recorded_at, self._skew_ms)

    def _waited(self, event_type: Any, happened: Happened) -> bool:
        first = self._catalog.waited_since(happened.tenant).get(event_type)
        if first is None:
            return False
        return happened.lifecycle or waited_for(happened.at, first, self._keep_ms, self._skew_ms)
