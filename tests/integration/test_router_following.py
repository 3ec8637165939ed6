"""The router tells when it follows an events topic created after it subscribed (dev mode's
"ready" waits for it, so that a first event is not held up by the router's rebalance)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from braidflow.config import Settings
from braidflow.streams.bulk_producer import BulkProducer
from braidflow.streams.catalog import Catalog
from braidflow.streams.dead_letters import DeadLetter
from braidflow.streams.router import EventRouter
from braidflow.streams.topics import ensure_topics


async def test_a_topic_created_after_the_router_started_is_followed_and_told(broker: str) -> None:
    kind = f"f{uuid.uuid4().hex[:8]}"
    settings = Settings(
        broker=broker,
        prefix=f"t{uuid.uuid4().hex[:10]}",
        partitions=2,
        events_prefix=f"{kind}-events.",
    ).for_dev()
    ensure_topics(settings)
    bulk = BulkProducer(broker)
    await bulk.start()

    async def produce(topic: str, key: bytes, value: bytes) -> int:
        return await (await bulk.queue(topic, key, value))

    async def dead_letter(letter: DeadLetter) -> None:
        raise AssertionError(f"nothing should be dead-lettered: {letter}")

    catalog = Catalog(settings, produce)
    await catalog.start()
    router = EventRouter(
        settings, catalog, bulk.queue, dead_letter, lambda: int(time.time() * 1000)
    )
    first, second = f"{kind}-events.first", f"{kind}-events.second"
    try:
        await router.start()
        assert not await router.following([first], 0.5)
        admin = AdminClient({"bootstrap.servers": broker})
        for future in admin.create_topics([NewTopic(first, 2, 1), NewTopic(second, 3, 1)]).values():
            future.result(10)
        assert await router.following([first, second], 30)
        assert await router.following([], 0)
    finally:
        await router.stop()
        await catalog.stop()
        await bulk.stop()
