"""Creating braidflow's topics with explicit partition counts before anything uses them."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from braidflow.config import Settings


def required_topics(settings: Settings) -> list[NewTopic]:
    """Every topic a worker reads or writes, except Faust's own changelogs (Faust creates those)."""
    topics = settings.topics
    r = settings.replication
    partitioned = [topics.transitions, topics.tasks, topics.lifecycle, topics.waits]
    return [
        *(NewTopic(name, settings.partitions, r) for name in partitioned),
        # One partition: every worker reads all deployments, in order.
        NewTopic(topics.workflows, 1, r, config={"cleanup.policy": "compact"}),
        NewTopic(topics.dead_letters, 1, r),
    ]


def ensure_topics(settings: Settings, timeout_s: float = 15.0) -> None:
    """Create missing topics; an existing topic with other partitions is reported, not changed."""
    admin = AdminClient({"bootstrap.servers": settings.broker})
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = required_topics(settings)
    for topic in wanted:
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
