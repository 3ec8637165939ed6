"""An event type names its Kafka topic by its first segment: the rule that makes it one.

Kept here, in the pure core, so that the engine can refuse a `publish` node's
rendered type with the same words the runtime would use when sending it.
"""

from __future__ import annotations

import re

_TOPIC_SEGMENT = re.compile(r"[a-zA-Z0-9_-]+")


def topic_segment_problem(event_type: str) -> str | None:
    """Why the first segment of `event_type` cannot name a topic; None when it can."""
    segment = event_type.split(".", 1)[0]
    if not segment:
        return f"{event_type!r} has no first segment to name a topic"
    if not _TOPIC_SEGMENT.fullmatch(segment):
        return (
            f"{segment!r}, the first segment of {event_type!r}, may only hold"
            " a-z, A-Z, 0-9, '_' and '-' (it names a Kafka topic)"
        )
    return None
