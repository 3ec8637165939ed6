"""What an `EventRouter` needs, on the real broker, for tests that drive one directly."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.bulk_producer import BulkProducer
from braidflow.streams.catalog import Catalog
from braidflow.streams.router import EventRouter
from braidflow.streams.topics import ensure_topics


@dataclass(frozen=True)
class RouterParts:
    settings: Settings
    bulk: BulkProducer
    catalog: Catalog

    def router(self) -> EventRouter:
        """A router on these parts that sends through the bulk producer and fails the test
        on any dead letter."""
        return EventRouter(
            self.settings,
            self.catalog,
            self.bulk.queue,
            refuse_dead_letter,
            lambda: int(time.time() * 1000),
        )


async def refuse_dead_letter(letter: DeadLetter) -> None:
    """A router's dead-letter callback for tests in which nothing should be dead-lettered."""
    raise AssertionError(f"nothing should be dead-lettered: {letter}")


@asynccontextmanager
async def router_parts(broker: SuiteBroker, kind: str) -> AsyncIterator[RouterParts]:
    """Settings with a prefix of their own and events topics `<kind>-events.*`, a started bulk
    producer, and a started catalog; stopped on the way out.

    Its own events prefix: a router follows every events topic its pattern matches, and
    other tests on this broker publish malformed events on purpose.
    """
    settings = Settings(
        kafka=broker.connection,
        prefix=f"t{uuid.uuid4().hex[:10]}",
        partitions=2,
        events_prefix=f"{kind}-events.",
    ).for_dev()
    ensure_topics(settings)
    bulk = BulkProducer(broker.connection)
    await bulk.start()

    async def produce(topic: str, key: bytes, value: bytes) -> int:
        return await (await bulk.queue(topic, key, value))

    catalog = Catalog(settings, produce)
    await catalog.start()
    try:
        yield RouterParts(settings, bulk, catalog)
    finally:
        await catalog.stop()
        await bulk.stop()
