"""The end of a partition as it is, read from a fetch answer.

Tansu 0.6, the embedded broker, answers ListOffsets(latest) with the base offset of a
partition's last batch plus one, not the offset past its last record (DESIGN.md). A fetch
answers with the partition's true high watermark, on Tansu as on Apache Kafka. Faust's
table recovery (`streams/changelog_ends.py`) and the read models' check for a recreated
topic (`connectors/projection.py`) read ends that way where ListOffsets may be short.

The watermark is taken from the first answer, not from reading the records up to it: Tansu
0.6 lists every batch of a partition on each fetch, within the fetch's wait, and answers
without records when the listing does not get to the offset asked for. The watermark comes
with every answer, records or not: librdkafka keeps it (`get_watermark_offsets(cached=True)`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka import Consumer, TopicPartition

from braidflow.kafka_connection import KafkaConnection


def fetched_ends(
    broker: KafkaConnection,
    reported: Mapping[tuple[str, int], int],
    timeout_s: float = 15.0,
    group: str = "braidflow-changelog-ends",
) -> dict[tuple[str, int], int]:
    """The end (offset past the last record) of each (topic, partition): the high watermark
    of a fetch answer at `reported` - 1 (its last batch starts there or before); empty ones
    are left out.

    TimeoutError if `timeout_s` pass without an answer for one more partition. `group` is
    only looked up, never joined (a cluster's ACLs may allow only the worker's).
    """
    wanted = {tp: end for tp, end in reported.items() if end > 0}
    if not wanted:
        return {}
    consumer = Consumer(
        broker.confluent(
            {
                "group.id": group,
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
            }
        )
    )
    ends: dict[tuple[str, int], int] = {}
    try:
        consumer.assign([TopicPartition(t, p, end - 1) for (t, p), end in wanted.items()])
        deadline = time.monotonic() + timeout_s
        while len(ends) < len(wanted):
            if time.monotonic() > deadline:
                missing = sorted(set(wanted) - set(ends))
                raise TimeoutError(f"no end read for {missing[:3]} in {timeout_s} s")
            # Fetches run in librdkafka's threads; polling serves their errors (records
            # that come are not needed).
            message = consumer.poll(0.05)
            if message is not None and message.error() is not None:
                raise RuntimeError(f"reading a partition's end: {message.error()}")
            for topic, partition in set(wanted) - set(ends):
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
                # Invalid (negative) until a fetch answer for the partition came.
                if high >= 0:
                    ends[(topic, partition)] = high
                    # The deadline bounds a silence, not the whole read.
                    deadline = time.monotonic() + timeout_s
    finally:
        consumer.close()
    return ends
