"""While no event flows, the router waits in its thread, not on the event loop: each wait
that ends empty is a round trip through the loop, and waiting 100 ms at a time made ten a
second on an idle worker."""

from __future__ import annotations

import asyncio
import uuid

from confluent_kafka.admin import AdminClient, NewTopic
from router_parts import router_parts
from suite_broker import SuiteBroker


async def test_an_idle_router_waits_about_once_a_second(broker: SuiteBroker) -> None:
    kind = f"i{uuid.uuid4().hex[:8]}"
    topic = f"{kind}-events.quiet"
    admin = AdminClient(broker.confluent())
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(10)

    async with router_parts(broker, kind) as parts:
        router = parts.router()
        try:
            await router.start()
            assert await router.following([topic], 30)
            before = router.waits
            await asyncio.sleep(3)
            idle_waits = router.waits - before
        finally:
            await router.stop()
    # Three seconds of 100 ms waits are 30; of 1 s waits, 3 or 4.
    assert idle_waits <= 6, idle_waits
