"""The audit topic is created with the others, and keeps what it is given."""

from __future__ import annotations

from braidflow.config import Settings
from braidflow.streams.topics import required_topics


def test_the_audit_topic_is_kept_for_ever_and_never_compacted() -> None:
    [topic] = [t for t in required_topics(Settings(prefix="bf")) if t.topic == "bf.audit"]
    assert topic.num_partitions == 1
    assert topic.config == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "retention.bytes": "-1",
    }
