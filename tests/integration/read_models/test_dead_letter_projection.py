"""The dead-letter index follows the dead-letter topic of a real broker and resumes where it stopped."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from aiokafka import AIOKafkaProducer
from counting_index import Counting
from read_model_stores import ReadModelAt
from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.connectors.dead_letter_index import DeadLetterIndex, DeadLetterProjection
from braidflow.engine import DeadLetterNode, NodeError
from braidflow.schemas.dead_letters import DeadLetter, encode_node_letter
from braidflow.streams.topics import ensure_topics

WAIT_S = 30.0
NOW = 1_700_000_000_000


class CountingIndex(Counting, DeadLetterIndex):
    """A dead-letter index that counts what it stores (`applied`)."""


@pytest.fixture
def topic(broker: SuiteBroker, prefix: str) -> str:
    settings = Settings(kafka=broker.connection, prefix=prefix)
    ensure_topics(settings)
    return settings.topics.dead_letters


def poison(offset: int, at: int) -> DeadLetter:
    return DeadLetter("bf.transitions", 1, offset, b"e1", b"not avro", "undecodable", at)


def failed_node(execution_id: str, at: int, workflow_id: str = "orders") -> DeadLetterNode:
    return DeadLetterNode(
        id=f"{execution_id}/ship/dead",
        execution_id=execution_id,
        workflow_id=workflow_id,
        workflow_version=1,
        node_id="ship",
        at=at,
        input={"sku": "widget-1"},
        errors=(NodeError("HTTPError", "503", "ship"),) * 3,
        context={"handler": "shipping.book"},
    )


async def publish(
    producer: AIOKafkaProducer, topic: str, letters: Iterable[DeadLetter | DeadLetterNode | bytes]
) -> int:
    """Send dead letters (or raw values) as a worker would; how many were sent."""
    sent = []
    for letter in letters:
        if isinstance(letter, DeadLetterNode):
            value = encode_node_letter(letter)
        else:
            value = letter if isinstance(letter, bytes) else letter.encode()
        sent.append(await producer.send(topic, value, key=b"k"))
    for delivery in sent:
        await delivery
    return len(sent)


async def follow(index: DeadLetterIndex, broker: SuiteBroker, topic: str) -> DeadLetterProjection:
    projection = DeadLetterProjection(index, broker.connection, topic, fetch_max_wait_ms=5)
    await projection.start()
    assert await projection.wait_caught_up(WAIT_S), "the projection did not catch up"
    return projection


def ids(letters: list[dict[str, object]]) -> list[object]:
    return [letter["id"] for letter in letters]


async def test_dead_letters_of_both_kinds_are_listed_from_the_topic(
    broker: SuiteBroker, topic: str, producer: AIOKafkaProducer, read_model_at: ReadModelAt
) -> None:
    await publish(
        producer,
        topic,
        [
            poison(10, NOW),
            failed_node("o1", NOW + 10),
            # Neither kind: skipped, without stalling the partition.
            b"not json",
            failed_node("r1", NOW + 20, workflow_id="refunds"),
            poison(11, NOW + 30),
        ],
    )
    index = DeadLetterIndex(read_model_at("dead-letters-index"))
    projection = await follow(index, broker, topic)
    try:
        assert ids(index.list()) == [
            "bf.transitions:1:11",
            "r1/ship/dead",
            "o1/ship/dead",
            "bf.transitions:1:10",
        ]
        assert ids(index.list(workflow_id="orders")) == ["o1/ship/dead"]
        assert ids(index.list(kind="record", limit=1)) == ["bf.transitions:1:11"]
        node = index.get("o1/ship/dead")
        assert node is not None
        assert node["errors"] == [{"type": "HTTPError", "message": "503"}] * 3
        assert node["at"] == "2023-11-14T22:13:20.010Z"
        record = index.get("bf.transitions:1:10")
        assert record is not None
        assert (record["key"], record["value"], record["reason"]) == (
            "ZTE=",
            "bm90IGF2cm8=",
            "undecodable",
        )
    finally:
        await projection.stop()
        index.close()


async def test_a_restarted_projection_resumes_without_rereading_or_missing(
    broker: SuiteBroker, topic: str, producer: AIOKafkaProducer, read_model_at: ReadModelAt
) -> None:
    path = read_model_at("dead-letters-index")
    sent = await publish(producer, topic, [poison(1, NOW), failed_node("o1", NOW + 1)])
    index = CountingIndex(path)
    projection = await follow(index, broker, topic)
    await projection.stop()
    assert index.mark_redriven("o1/ship/dead", NOW + 5)
    index.close()
    assert index.applied == sent

    # While no projection runs, more dead letters come.
    sent_later = await publish(producer, topic, [failed_node("o2", NOW + 2), poison(2, NOW + 3)])
    index = CountingIndex(path)
    projection = await follow(index, broker, topic)
    try:
        assert index.applied == sent_later
        assert sum(index.positions().values()) == sent + sent_later
        letters = index.list()
        assert ids(letters) == [
            "bf.transitions:1:2",
            "o2/ship/dead",
            "o1/ship/dead",
            "bf.transitions:1:1",
        ]
        assert [letter["redriven_at"] is not None for letter in letters] == [
            False,
            False,
            True,
            False,
        ]
    finally:
        await projection.stop()
        index.close()
