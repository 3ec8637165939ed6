"""The router tells when it follows an events topic created after it subscribed (dev mode's
"ready" waits for it, so that a first event is not held up by the router's rebalance)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic
from router_parts import router_parts
from suite_broker import SuiteBroker

from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.router import EventRouter


async def test_a_topic_created_after_the_router_started_is_followed_and_told(
    broker: SuiteBroker,
) -> None:
    kind = f"f{uuid.uuid4().hex[:8]}"

    async def dead_letter(letter: DeadLetter) -> None:
        raise AssertionError(f"nothing should be dead-lettered: {letter}")

    async with router_parts(broker, kind) as parts:
        router = EventRouter(
            parts.settings,
            parts.catalog,
            parts.bulk.queue,
            dead_letter,
            lambda: int(time.time() * 1000),
        )
        first, second = f"{kind}-events.first", f"{kind}-events.second"
        try:
            await router.start()
            assert not await router.following([first], 0.5)
            admin = AdminClient(broker.confluent())
            created = admin.create_topics([NewTopic(first, 2, 1), NewTopic(second, 3, 1)])
            for future in created.values():
                future.result(10)
            assert await router.following([first, second], 30)
            assert await router.following([], 0)
        finally:
            await router.stop()
