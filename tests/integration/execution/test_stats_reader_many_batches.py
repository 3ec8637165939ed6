"""The stats' lifecycle reader, a librdkafka consumer, goes on reading a lifecycle partition
of many batches on the embedded broker: Tansu answers a fetch without records when listing
the partition's batches outlasts the fetch's wait (braidflow/fetch_stall.py). The test reads at
a 1 ms wait, which stalls on 3,000 batches as 5 ms does on 12,000: the same stall and growth,
a quarter of the batches (without `watch_stalls` it times out)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from confluent_kafka import Producer
from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.fetch_stall import watch_stalls
from braidflow.streams.lifecycle_reader import LifecycleReader
from braidflow.streams.topics import ensure_topics

# Tansu lists some 7,000 batches in a 5 ms wait, a lifecycle partition at the reader's
# 100 ms some 20,000-40,000: the test reads at a 1 ms wait, which stalls on a few thousand
# and grows to 4 ms and on (`fetch_stall.longer_wait`) as a 5 ms wait does past 12,000.
# Reading a partition of 12,000 at 5 ms took some 55 s; of 3,000 at 1 ms, some 10 s.
BATCHES = 3_000
FETCH_WAIT_MS = 1
DEADLINE_S = 120.0


def append(broker: SuiteBroker, topic: str, values: list[bytes]) -> None:
    """Each value in a batch of its own, on partition 0."""
    producer = Producer(broker.confluent({"linger.ms": 0, "batch.num.messages": 1}))
    for n, value in enumerate(values):
        producer.produce(topic, value, b"one-key", partition=0)
        if n % 1000 == 999:
            assert producer.flush(30) == 0
    assert producer.flush(30) == 0


async def test_a_record_after_many_batches_of_the_lifecycle_partition_is_read(
    broker: SuiteBroker, prefix: str
) -> None:
    # As a worker on the embedded broker does (runtime/wiring.py).
    watch_stalls()
    settings = replace(
        Settings(kafka=broker.connection, prefix=prefix, partitions=1).for_dev(),
        background_fetch_wait_ms=FETCH_WAIT_MS,
    )
    ensure_topics(settings)
    seen: set[bytes] = set()

    async def observe(messages: Sequence[Any]) -> None:
        seen.update(m.value() for m in messages)

    reader = LifecycleReader(settings, observe)
    await reader.start()
    try:
        async with asyncio.timeout(DEADLINE_S):
            append(broker, settings.topics.lifecycle, [b"first"])
            while b"first" not in seen:
                await asyncio.sleep(0.1)
            await asyncio.to_thread(
                append, broker, settings.topics.lifecycle, [b"filler"] * BATCHES
            )
            append(broker, settings.topics.lifecycle, [b"last"])
            while b"last" not in seen:
                await asyncio.sleep(0.1)
    finally:
        await reader.stop()
