"""A worker's catalog catches up on demand with deployments made through another worker."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.streams.bulk_producer import BulkProducer
from braidflow.streams.catalog import Catalog
from braidflow.streams.topics import ensure_topics


def one_node(workflow_id: str) -> str:
    return json.dumps({"id": workflow_id, "nodes": [{"id": "done", "type": "end"}], "edges": []})


async def test_catch_up_reads_what_another_worker_deployed_before_it(
    broker: SuiteBroker, prefix: str
) -> None:
    quick = Settings(kafka=broker.connection, prefix=prefix).for_dev()
    # Fetches that wait long: this follower alone would see the deployment seconds later.
    slow = replace(quick, background_fetch_wait_ms=3_000)
    ensure_topics(quick)
    producer = BulkProducer(broker.connection)
    await producer.start()

    async def produce(topic: str, key: bytes, value: bytes) -> int:
        return await (await producer.queue(topic, key, value))

    deploying, following = Catalog(quick, produce), Catalog(slow, produce)
    await deploying.start()
    await following.start()
    try:
        await following.ready.wait()
        await deploying.deploy(one_node(f"{prefix}-a"), int(time.time() * 1000))
        await following.catch_up()
        assert following.latest(f"{prefix}-a") is not None
        # With nothing new, catching up is one offset request, not a wait for a fetch.
        began = time.monotonic()
        await following.catch_up()
        assert time.monotonic() - began < 2.5
    finally:
        await following.stop()
        await deploying.stop()
        await producer.stop()
