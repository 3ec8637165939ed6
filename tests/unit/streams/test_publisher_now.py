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
