"""A worker that takes over partitions with records waiting past their committed offsets applies
every one of them (issue 16).

Faust sought the partitions back to their committed offsets one by one while its fetcher ran
(a worker's first assignment had never stopped the flow): what it fetched from a partition
already sought back was dropped with the agents' queues, and the next record's distance was
counted as a gap and committed past. A killed worker's successor so lost records at the crash
boundary of every partition, at times one that nothing sends again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from suite_broker import SuiteBroker
from topic_records import topic_partitions
from workers import WorkerProcess

from braidflow.engine import StartExecution
from braidflow.schemas import encode_transition

WORKFLOW = """
id: backlog
nodes:
  - {id: double, type: transform, params: {set: {n: "${input.n * 2}"}}}
  - {id: done, type: end, params: {output: {n: "${nodes.double.output.n}"}}}
edges:
  - {from: double, to: done}
"""
# Enough that every partition (4 in the suite) holds some, before the restart and after.
BEFORE = 24
BACKLOG = 40
COMMIT_WAIT_S = 60.0


def committed_offsets(broker: SuiteBroker, group: str, topic: str) -> dict[int, int]:
    """The committed offset of each partition of `topic` in `group` (-1001: none)."""
    consumer = Consumer(broker.confluent({"group.id": group, "enable.auto.commit": False}))
    try:
        partitions = topic_partitions(broker, topic, consumer)
        found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def test_a_worker_taking_over_a_backlog_applies_every_record_past_the_committed_offsets(
    broker: SuiteBroker, prefix: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    transitions = f"{prefix}.transitions"
    # Each its own data dir, as a worker on another machine: the second one recovers the
    # tables from their changelogs, the path on which Faust seeks with its fetcher on.
    first = start_worker("first", tmp_path / "first").wait_ready()
    assert first.api.deploy(WORKFLOW).status == 201
    warm = [first.api.start("backlog", {"n": n}) for n in range(BEFORE)]
    first.wait_until_finished(warm, 60)
    # Every transitions partition has a committed offset for the next worker to seek to.
    deadline = time.monotonic() + COMMIT_WAIT_S
    while min(committed_offsets(broker, prefix, transitions).values()) <= 0:
        if time.monotonic() > deadline:
            first.fail(f"offsets not committed: {committed_offsets(broker, prefix, transitions)}")
        time.sleep(0.2)
    first.stop()

    # What the stopped worker's API had accepted, and nobody has applied yet.
    ids = [uuid.uuid4().hex for _ in range(BACKLOG)]
    # Keyed and partitioned as a worker's producer does (murmur2).
    producer = Producer(broker.confluent({"linger.ms": 0, "partitioner": "murmur2_random"}))
    now = int(time.time() * 1000)
    for n, execution_id in enumerate(ids):
        start = StartExecution(f"{execution_id}/start", execution_id, now, "backlog", 1, {"n": n})
        producer.produce(transitions, encode_transition(start), execution_id.encode())
    assert producer.flush(10) == 0

    second = start_worker("second", tmp_path / "second").wait_ready()
    finished = second.wait_until_finished(ids, 60)
    assert {e: v["status"] for e, v in finished.items()} == dict.fromkeys(ids, "completed")
