"""The stats' lifecycle reader stays in its group while a batch takes longer than the
group's poll interval (10 s): an event naming a workflow version the worker has not read
yet waits for it up to 30 s. Against the real embedded broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Producer
from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.streams.lifecycle_reader import LifecycleReader
from braidflow.streams.topics import ensure_topics

# Past librdkafka's max.poll.interval.ms of the reader's group (10 s at the suite's settings).
SLOW_BATCH_S = 12.0
DEADLINE_S = 60.0


def produce(broker: SuiteBroker, topic: str, values: list[bytes]) -> None:
    producer = Producer(broker.confluent({"linger.ms": 0}))
    for value in values:
        producer.produce(topic, value, b"one-key")
    assert producer.flush(10) == 0


async def test_a_batch_observed_for_longer_than_the_poll_interval_is_read_once(
    broker: SuiteBroker, prefix: str
) -> None:
    settings = Settings(
        kafka=broker.connection, prefix=prefix, partitions=1, rebalance_timeout_s=3.0
    )
    ensure_topics(settings)
    seen: Counter[bytes] = Counter()
    batches = 0

    async def observe(messages: Sequence[Any]) -> None:
        nonlocal batches
        batches += 1
        if batches == 1:
            await asyncio.sleep(SLOW_BATCH_S)
        seen.update(m.value() for m in messages)

    reader = LifecycleReader(settings, observe)
    produce(broker, settings.topics.lifecycle, [b"first-1", b"first-2", b"first-3"])
    await reader.start()
    try:
        async with asyncio.timeout(DEADLINE_S):
            while seen[b"first-3"] == 0:
                await asyncio.sleep(0.1)
            produce(broker, settings.topics.lifecycle, [b"then-1", b"then-2"])
            while seen[b"then-2"] == 0:
                await asyncio.sleep(0.1)
            # Long enough for a reader that left its group to be given the batch again.
            await asyncio.sleep(3)
    finally:
        await reader.stop()
    assert seen == Counter([b"first-1", b"first-2", b"first-3", b"then-1", b"then-2"])
