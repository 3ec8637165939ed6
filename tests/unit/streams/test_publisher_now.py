"""`Publisher.queue_now`: a record in its batch at once, told of its acknowledgement, and a
transition of this worker handed to the transitions reader as `queue` hands it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.protocol.metadata import MetadataResponse_v0
from aiokafka.structs import TopicPartition

from braidflow.config import Settings
from braidflow.engine import TimerFired
from braidflow.engine.ids import DueTimer
from braidflow.schemas import decode_transition
from braidflow.streams.app import create_app
from braidflow.streams.publisher import Publisher


@pytest.fixture
async def publisher(tmp_path: Path) -> AsyncIterator[Publisher]:
    settings = Settings(data_dir=tmp_path)
    app = create_app(settings).app
    producer = app.producer._new_producer()  # type: ignore[attr-defined]
    topics = [(0, settings.topics.transitions, [(0, 0, 0, [0], [0])])]
    producer.client.cluster.update_metadata(MetadataResponse_v0([(0, "127.0.0.1", 9092)], topics))
    app.producer._producer = producer  # type: ignore[attr-defined]
    yield Publisher(app, settings.topics)
    await producer.stop()


async def test_a_transition_sent_now_is_told_to_its_sender_and_handed_to_the_reader(
    publisher: Publisher,
) -> None:
    told: list[tuple[Any, ...]] = []
    handed: list[tuple[Any, ...]] = []
    publisher.on_transition = lambda *sent: handed.append(sent)
    topic = publisher._topics.transitions

    def acknowledged(argument: Any, partition: int, offset: int, at: int) -> None:
        told.append((argument, partition, offset))

    assert publisher.queue_now(topic, b"ex", b"t", None, acknowledged, "t1")
    assert not publisher.queue_now("unknown", b"ex", b"t", None, acknowledged, "t2")
    producer = publisher._app.producer._producer  # type: ignore[attr-defined]
    (batch,) = producer._message_accumulator._batches[TopicPartition(topic, 0)]
    batch.done(base_offset=5, timestamp=2_000)
    await asyncio.sleep(0)
    assert told == [("t1", 0, 5)]
    assert handed == [(0, 5, b"ex", b"t", 2_000)]


async def test_a_fired_timer_goes_with_no_future_of_its_own_and_is_handed_to_the_reader(
    publisher: Publisher,
) -> None:
    handed: list[tuple[Any, ...]] = []
    publisher.on_transition = lambda *sent: handed.append(sent)
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await publisher.fire_timer(DueTimer(1_000, "ex", "nap"), trace)
    await publisher.fire_timer(DueTimer(2_000, "ex", "nap"), None)
    producer = publisher._app.producer._producer  # type: ignore[attr-defined]
    (batch,) = producer._message_accumulator._batches[
        TopicPartition(publisher._topics.transitions, 0)
    ]
    # aiokafka's record futures: the fired timers made none (a future and a callback each).
    assert batch._msg_futures == []
    batch.done(base_offset=5, timestamp=2_000)
    await asyncio.sleep(0)
    assert [(partition, offset, key) for partition, offset, key, _, _ in handed] == [
        (0, 5, b"ex"),
        (0, 6, b"ex"),
    ]
    assert [decode_transition(value) for *_, value, _ in handed] == [
        TimerFired("ex/timer/nap/1000", "ex", 1_000, "nap"),
        TimerFired("ex/timer/nap/2000", "ex", 2_000, "nap"),
    ]
