"""The router tells when it follows an events topic created after it subscribed (dev mode's
"ready" waits for it, so that a first event is not held up by the router's rebalance), and
can join its group before it routes (dev mode joins while the worker starts)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from router_parts import refuse_dead_letter, router_parts
from suite_broker import SuiteBroker

from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for
from braidflow.streams.router import EventRouter


async def test_a_topic_created_after_the_router_started_is_followed_and_told(
    broker: SuiteBroker,
) -> None:
    kind = f"f{uuid.uuid4().hex[:8]}"

    async with router_parts(broker, kind) as parts:
        router = parts.router()
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


async def test_a_router_that_joined_before_it_started_routes_only_once_started(
    broker: SuiteBroker,
) -> None:
    kind = f"j{uuid.uuid4().hex[:8]}"
    sent: list[bytes] = []

    async with router_parts(broker, kind) as parts:

        async def send(topic: str, key: bytes, value: bytes, headers: Any = None) -> Any:
            sent.append(key)
            return await parts.bulk.queue(topic, key, value, headers)

        workflow = {
            "id": f"{kind}-flow",
            "triggers": [{"event": {"types": [f"{kind}.opened"]}}],
            "nodes": [{"id": "done", "type": "end"}],
            "edges": [],
        }
        await parts.catalog.deploy(json.dumps(workflow), int(time.time() * 1000))
        event = CloudEvent(id="ev-0", source="/t", type=f"{kind}.opened")
        topic = topic_for(event.type, parts.settings.events_prefix)
        admin = AdminClient(broker.confluent())
        for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
            future.result(10)
        router = EventRouter(
            parts.settings, parts.catalog, send, refuse_dead_letter, lambda: int(time.time() * 1000)
        )
        try:
            router.join()
            headers, value = to_structured(event)
            producer = Producer(broker.confluent())
            producer.produce(topic, value, event.id.encode(), headers=headers)
            assert producer.flush(10) == 0
            # Longer than a join takes: the group is joined, and nothing is routed yet.
            await asyncio.sleep(parts.settings.session_timeout_s)
            assert sent == []
            assert not await router.following([topic], 0)
            await router.start()
            assert await router.following([topic], 30)
            deadline = time.monotonic() + 30
            while not sent and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await router.stop()
    assert len(sent) == 1, "the event published before the start is routed once started"
