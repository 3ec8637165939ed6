"""A worker goes on taking records from partitions of many batches on the embedded broker.

Tansu 0.6 lists every batch of a partition on each fetch, within the fetch's wait, and
answers without records when the listing does not get to the offset asked for: at dev
mode's 5 ms wait, past some 7,000 batches. A long-lived dev broker gets there on every
topic, and a worker's live consumers then never took another record from the partition.
The worker fetches at a 1 ms wait, which stalls on 3,000 batches as 5 ms does on 12,000: the
same stall and growing wait, a quarter of the batches (without `adapt_fetch_waits` it times out).
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.config import Topics

# Tansu lists some 7,000 batches in a 5 ms fetch wait: the worker fetches at a 1 ms wait,
# which stalls on a few thousand and grows (`streams/fetch_wait.py`) as a 5 ms wait does
# past 12,000. Reading 12,000 at 5 ms took some 50 s in the suite; 3,000 at 1 ms, a fraction.
BATCHES = 3_000
ONE_STEP = """
id: after-many-batches
nodes:
  - {id: echo, type: task, params: {handler: test.echo, input: {n: "${input.n}"}}}
  - {id: done, type: end, params: {output: {n: "${nodes.echo.output.n}"}}}
edges:
  - {from: echo, to: done}
"""


def last_record(broker: SuiteBroker, topic: str) -> tuple[bytes, bytes]:
    """The key and value of a record of the last batch of partition 0 of `topic`."""
    consumer = Consumer(broker.confluent({"group.id": "unused", "enable.auto.commit": False}))
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, end - 1)])
        while (message := consumer.poll(1.0)) is None or message.error() is not None:
            pass
        return message.key(), message.value()
    finally:
        consumer.close()


def append(broker: SuiteBroker, topic: str, record: tuple[bytes, bytes], batches: int) -> None:
    """Append `batches` one-record batches of `record` to partition 0 of `topic`."""
    producer = Producer(broker.confluent({"linger.ms": 0, "batch.num.messages": 1}))
    key, value = record
    for n in range(batches):
        producer.produce(topic, value, key, partition=0)
        if n % 1000 == 999:
            assert producer.flush(30) == 0
    assert producer.flush(30) == 0


def test_a_worker_takes_new_records_on_a_partition_of_many_batches(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    # One partition per topic: every record of an execution lands on the one filled.
    env = {"BRAIDFLOW_PARTITIONS": "1", "BRAIDFLOW_FETCH_MAX_WAIT_MS": "1"}
    with WorkerProcess(broker, prefix, tmp_path / "data", tmp_path / "w.log", env=env) as worker:
        worker.wait_ready()
        assert worker.api.deploy(ONE_STEP).status == 201
        first = worker.api.start("after-many-batches", {"n": 1})
        assert worker.wait_until_finished([first], 60)[first]["output"] == {"n": 1}
        # The finished execution's last transition again and again: the worker reads each
        # as it comes, and steps none (the execution is over).
        transitions = Topics(prefix).transitions
        append(broker, transitions, last_record(broker, transitions), BATCHES)

        second = worker.api.start("after-many-batches", {"n": 2})
        assert worker.wait_until_finished([second], 120)[second]["output"] == {"n": 2}
