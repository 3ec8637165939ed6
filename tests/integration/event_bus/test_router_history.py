"""The router starts a workflow only for events from after the version carrying the trigger.

Driven directly (router_parts), with events whose record timestamps are set between
deployments, and no clock skew allowed, so the times decide exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

from confluent_kafka import Producer
from router_parts import router_parts
from suite_broker import SuiteBroker
from topic_records import TopicReader

from braidflow.schemas import decode_transition
from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.router import EventRouter


def on_event(workflow_id: str, event_type: str, output: str, when: str | None = None) -> str:
    trigger = {"types": [event_type], **({"when": when} if when else {})}
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [{"event": trigger}],
            "nodes": [{"id": "done", "type": "end", "params": {"output": {"v": output}}}],
            "edges": [],
        }
    )


async def test_a_redeploy_keeps_an_unchanged_triggers_time_and_a_changed_one_starts_anew(
    broker: SuiteBroker,
) -> None:
    kind = f"h{uuid.uuid4().hex[:8]}"
    kept, changed = f"{kind}-kept", f"{kind}-changed"
    event_type = f"{kind}.opened"
    async with router_parts(broker, kind) as parts:
        settings = dataclasses.replace(parts.settings, event_clock_skew_s=0.0)

        async def deploy(workflow_id: str, text: str) -> int:
            deployment, created = await parts.catalog.deploy(text, int(time.time() * 1000))
            assert created
            latest = parts.catalog.latest(workflow_id)
            assert latest is not None and latest.version == deployment.version
            return latest.recorded_at

        first = await deploy(kept, on_event(kept, event_type, "1"))
        await deploy(changed, on_event(changed, event_type, "1"))
        await asyncio.sleep(0.05)
        # Version 2 of `kept` changes its output only; that of `changed` adds a filter.
        second = await deploy(kept, on_event(kept, event_type, "2"))
        last = await deploy(changed, on_event(changed, event_type, "2", when="event.data.n > 0"))
        assert second > first + 1
        stamps = {"before": first - 1_000, "between": (first + second) // 2, "after": last + 5}
        producer = Producer(broker.confluent())
        for name, stamp in stamps.items():
            headers, value = to_structured(
                CloudEvent(id=name, source="/t", type=event_type, data={"n": 1})
            )
            producer.produce(
                topic_for(event_type, settings.events_prefix),
                value,
                name.encode(),
                headers=headers,
                timestamp=stamp,
            )
        assert producer.flush(10) == 0

        letters: list[DeadLetter] = []

        async def dead_letter(letter: DeadLetter) -> None:
            letters.append(letter)

        router = EventRouter(
            settings, parts.catalog, parts.bulk.queue, dead_letter, lambda: int(time.time() * 1000)
        )
        await router.start()
        try:
            with TopicReader(broker, settings.topics.transitions) as reader:
                await asyncio.to_thread(reader.until, lambda records: len(records) >= 3, 30)
                # Time for any start that should not be there to show up too.
                await asyncio.sleep(1.5)
                await asyncio.to_thread(reader.read_to_end)
                starts = [decode_transition(r.value) for r in reader.records if r.value]
        finally:
            await router.stop()
    started = sorted((s.workflow_id, s.event["id"]) for s in starts)
    assert started == [(changed, "after"), (kept, "after"), (kept, "between")]
    assert letters == []
