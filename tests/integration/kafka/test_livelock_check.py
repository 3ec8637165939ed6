"""Faust's livelock check on the real broker: a partition whose position aiokafka is resetting
(after a fetch that timed out, say) is passed over, not read unguarded. Faust read it as
`tp_state.position`, whose assertion crashed a worker firing 30,000 timers under load."""

from __future__ import annotations

import asyncio
from pathlib import Path
from time import monotonic

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer.fetcher import OffsetResetStrategy
from faust.types import TP

from braidflow.config import Settings
from braidflow.streams.app import create_app
from tests.integration.suite_broker import SuiteBroker


async def test_the_livelock_check_passes_over_a_partition_being_reset(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    settings = Settings(kafka=broker.connection, prefix=prefix, data_dir=tmp_path)
    topic = f"{prefix}-livelock"
    admin = AIOKafkaAdminClient(**broker.aiokafka())
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()
    app = create_app(settings).app
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    thread._consumer = consumer
    thread.time_started = monotonic() - 3600  # long enough for every check to look
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        await asyncio.wait_for(consumer.getmany(timeout_ms=200), 10)
        state = consumer._subscription.subscription.assignment.state_value(partition)
        assert state.highwater is not None and state.has_valid_position
        thread.verify_event_path(monotonic(), TP(topic, 0))

        state.await_reset(OffsetResetStrategy.EARLIEST)
        assert not state.has_valid_position
        thread.verify_event_path(monotonic(), TP(topic, 0))
    finally:
        await consumer.stop()
