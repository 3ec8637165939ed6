"""A worker restarted on its data dir recovers a changelog of tens of thousands of batches.

On the embedded broker the changelog ends come from a fetch (streams/changelog_ends.py).
Tansu 0.6 lists every batch of a partition on each fetch, within the fetch's wait, and
leaves the partition's records out of the answer when the listing does not get to the
offset asked for: at a 5 ms wait, past some 7,000 batches (a worker restarted after
100,000 parked executions stopped with "no end read for executions-changelog ..."), and
Faust's own recovery read of such a partition at dev mode's 5 ms wait never ended.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Producer
from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.connectors.broker import SETTLING_KEY

# Batches in one changelog partition: well past what Tansu lists in a 5 ms fetch wait.
BATCHES = 25_000
ONE_STEP = """
id: after-a-large-changelog
nodes:
  - {id: echo, type: task, params: {handler: test.echo, input: {n: "${input.n}"}}}
  - {id: done, type: end, params: {output: {n: "${nodes.echo.output.n}"}}}
edges:
  - {from: echo, to: done}
"""


def fill_changelog(broker: SuiteBroker, topic: str, batches: int) -> None:
    """Append `batches` one-record batches to partition 0 of `topic`: tombstones for a key
    no table has, which recovery applies as no-ops (`settle_changelogs` sends the same)."""
    producer = Producer(broker.confluent({"linger.ms": 0, "batch.num.messages": 1}))
    for n in range(batches):
        producer.produce(topic, None, SETTLING_KEY, partition=0)
        if n % 1000 == 999:
            assert producer.flush(30) == 0
    assert producer.flush(30) == 0


def test_a_worker_restarted_on_a_changelog_of_many_batches_recovers(
    broker: SuiteBroker, prefix: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    # The suite's fetch wait, dev mode's: 5 ms.
    first = start_worker("first").wait_ready()
    assert first.api.deploy(ONE_STEP).status == 201
    first.stop()
    fill_changelog(broker, f"{prefix}-executions-changelog", BATCHES)

    second = start_worker("second").wait_ready(120)
    started = second.api.start("after-a-large-changelog", {"n": 3})
    assert second.wait_until_finished([started], 60)[started]["output"] == {"n": 3}
