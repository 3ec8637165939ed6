"""Creating braidflow's topics with explicit partition counts before anything uses them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from braidflow.config import Settings
from braidflow.kafka_reach import connected_admin
from braidflow.schemas.cloudevents import topic_for
from braidflow.schemas.lifecycle_events import LIFECYCLE_SEGMENT
from braidflow.schemas.node_logs import LOGS_RETENTION_MS
from braidflow.topology import EventTrigger, Workflow

log = logging.getLogger(__name__)

AUDIT_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
"""The audit topic keeps every record for ever: never compacted (a later record of a key must
not erase an earlier one), never expired by time or size. An operator whose policy bounds how
long an audit log is kept sets `retention.ms` on the topic; braidflow never changes the
configuration of a topic that exists. One partition: a total order, and few records."""

LOGS_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(LOGS_RETENTION_MS)}
"""Handlers' log lines are kept 7 days on the topic (see `schemas.node_logs`). Set
`retention.ms` on the topic to keep them longer; braidflow never changes the configuration of
a topic that exists."""


def required_topics(settings: Settings) -> list[NewTopic]:
    """Every topic a worker reads or writes, except Faust's own changelogs (Faust creates those)."""
    topics = settings.topics
    r = settings.replication
    partitioned = [
        topics.transitions,
        topics.tasks,
        topics.lifecycle,
        topics.waits,
        topics.admissions,
        topics.stats,
    ]
    return [
        *(NewTopic(name, settings.partitions, r) for name in partitioned),
        # One partition: every worker reads all deployments, in order.
        NewTopic(topics.workflows, 1, r, config={"cleanup.policy": "compact"}),
        NewTopic(topics.keys, 1, r, config={"cleanup.policy": "compact"}),
        NewTopic(topics.dead_letters, 1, r),
        NewTopic(topics.audit, 1, r, config=AUDIT_TOPIC_CONFIG),
        NewTopic(topics.logs, settings.partitions, r, config=LOGS_TOPIC_CONFIG),
    ]


def trigger_topics(settings: Settings, workflows: Iterable[Workflow]) -> list[NewTopic]:
    """The events topics that the event triggers of `workflows` name outright.

    Dev mode creates them with the examples: the router follows a topic created
    later only after its next metadata refresh, which the first event published
    to a new topic would wait out.
    """
    names = {
        topic_for(event_type, settings.events_prefix)
        for workflow in workflows
        for trigger in workflow.triggers
        if isinstance(trigger, EventTrigger)
        for event_type in trigger.types
        if not any(c in event_type.split(".", 1)[0] for c in "*?[")
        and not event_type.startswith(f"{LIFECYCLE_SEGMENT}.")
    }
    return [NewTopic(name, settings.partitions, settings.replication) for name in sorted(names)]


class EventsTopics:
    """Creates an events topic the first time this worker publishes to it.

    A broker with `auto.create.topics.enable=false` would otherwise hold every
    send to a new type's topic until it times out. Asked once per topic per
    worker; a failure (no right to create topics, say) is logged and the send
    goes ahead, as it would have.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._known: set[str] = set()

    async def ensure(self, topic: str) -> None:
        if topic in self._known:
            return
        self._known.add(topic)
        new = NewTopic(topic, self._settings.partitions, self._settings.replication)
        try:
            # Other services may have made it first, with partitions of their choosing.
            await asyncio.to_thread(create_topics, self._settings, [new], owned=False)
        except (RuntimeError, KafkaException) as exc:
            log.warning("cannot make sure events topic %s exists: %s", topic, exc)


def ensure_topics(
    settings: Settings, also: Iterable[NewTopic] = (), timeout_s: float = 15.0
) -> None:
    """Create braidflow's topics and `also` where missing; an existing topic with other
    partitions is reported, not changed."""
    create_topics(settings, [*required_topics(settings), *also], timeout_s)


def create_topics(
    settings: Settings,
    wanted: list[NewTopic],
    timeout_s: float = 15.0,
    *,
    owned: bool = True,
) -> None:
    """Create the topics of `wanted` that are missing; RuntimeError for one that cannot be
    created, or, when braidflow `owned` them, that exists with other partitions."""
    # The first contact with Kafka: unreachable, refused or untrusted, it says why in one line.
    admin, metadata = connected_admin(settings.kafka, timeout_s)
    existing = metadata.topics
    for topic in wanted if owned else ():
        found = existing.get(topic.topic)
        if found is not None and len(found.partitions) != topic.num_partitions:
            raise RuntimeError(
                f"topic {topic.topic} has {len(found.partitions)} partitions, expected"
                f" {topic.num_partitions}: use another --prefix or recreate it"
            )
    missing = [t for t in wanted if t.topic not in existing]
    if not missing:
        return
    for name, future in admin.create_topics(missing, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"cannot create topic {name}: {exc}") from None
