"""A send the broker never acknowledges makes the router read its events again: none is lost."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from router_parts import router_parts
from suite_broker import SuiteBroker
from topic_records import TopicReader

from braidflow.schemas import decode_transition
from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.bulk_producer import DeliveryError
from braidflow.streams.router import EventRouter


def on_event(workflow_id: str, event_type: str) -> str:
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [{"event": {"types": [event_type]}}],
            "nodes": [{"id": "done", "type": "end"}],
            "edges": [],
        }
    )


async def test_events_whose_starts_were_refused_are_routed_again(broker: SuiteBroker) -> None:
    kind = f"r{uuid.uuid4().hex[:8]}"
    async with router_parts(broker, kind) as parts:
        attempts: list[bytes] = []

        async def refuse_the_first_start(
            topic: str, key: bytes, value: bytes, headers: Any = None
        ) -> Any:
            # As if the broker had dropped the first start: its future fails, later ones go out.
            attempts.append(key)
            if len(attempts) == 1:
                refused: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                refused.set_exception(DeliveryError(f"{topic}: request timed out"))
                return refused
            return await parts.bulk.queue(topic, key, value, headers)

        letters: list[DeadLetter] = []

        async def dead_letter(letter: DeadLetter) -> None:
            letters.append(letter)

        router = EventRouter(
            parts.settings,
            parts.catalog,
            refuse_the_first_start,
            dead_letter,
            lambda: int(time.time() * 1000),
        )
        try:
            deployed_at = int(time.time() * 1000)
            await parts.catalog.deploy(on_event(f"{kind}-flow", f"{kind}.opened"), deployed_at)
            events = [
                CloudEvent(id=f"ev-{i}", source="/t", type=f"{kind}.opened") for i in range(3)
            ]
            producer = Producer(broker.confluent({"partitioner": "murmur2_random"}))
            for event in events:
                headers, value = to_structured(event)
                producer.produce(
                    topic_for(event.type, parts.settings.events_prefix),
                    value,
                    event.id.encode(),
                    headers=headers,
                )
            assert producer.flush(10) == 0
            await router.start()
            with TopicReader(broker, parts.settings.topics.transitions) as reader:
                await asyncio.to_thread(reader.until, lambda records: len(records) >= 3, 30)
                started = {
                    decode_transition(r.value).event["id"] for r in reader.records if r.value
                }
        finally:
            await router.stop()
    assert started == {"ev-0", "ev-1", "ev-2"}
    # The refused start was sent again, after the rewind.
    assert attempts.count(attempts[0]) >= 2
    assert letters == []
