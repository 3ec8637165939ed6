"""A worker goes on starting workflows from an events partition of many batches.

Tansu 0.6 lists every batch of a partition on each fetch, within the fetch's wait, and
answers without records when the listing does not get to the offset asked for: at dev
mode's 5 ms wait, past some 7,500 batches. The event router is a librdkafka consumer, whose
wait cannot change while it runs (streams/fetch_wait.py covers aiokafka's consumers only).
The worker fetches at a 1 ms wait, which stalls on 3,000 batches as 5 ms does on 12,000: the
same stall and growing wait, a quarter of the batches (without `watch_stalls` it times out).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from domain_events import executions_of, on_event
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.schemas.cloudevents import CloudEvent, to_structured

# Tansu lists some 7,500 batches in a 5 ms fetch wait: the worker fetches at a 1 ms wait,
# which stalls on a few thousand and grows (`fetch_stall.py`) as a 5 ms wait does
# past 12,000, with a quarter of the batches to append and read.
BATCHES = 3_000


def append_events(broker: SuiteBroker, topic: str, event_type: str, batches: int) -> None:
    """Append `batches` one-record batches of events of `event_type` to partition 0 of `topic`."""
    producer = Producer(broker.confluent({"linger.ms": 0, "batch.num.messages": 1}))
    for n in range(batches):
        headers, value = to_structured(
            CloudEvent(id=f"filler-{n}", source="/tests", type=event_type)
        )
        producer.produce(topic, value, f"filler-{n}".encode(), headers=headers, partition=0)
        if n % 1000 == 999:
            assert producer.flush(30) == 0
    assert producer.flush(30) == 0


def test_an_event_after_many_batches_of_its_partition_starts_its_workflow(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    kind = f"m{uuid.uuid4().hex[:8]}"
    # An events prefix of its own: only this test's topic is followed.
    events_prefix = f"{kind}-events."
    topic = f"{events_prefix}{kind}"
    admin = AdminClient(broker.confluent())
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(10)
    env = {"BRAIDFLOW_EVENTS_PREFIX": events_prefix, "BRAIDFLOW_FETCH_MAX_WAIT_MS": "1"}
    with WorkerProcess(broker, prefix, tmp_path / "data", tmp_path / "w.log", env=env) as worker:
        worker.wait_ready()
        workflow = f"{kind}-flow"
        assert worker.api.deploy(on_event(workflow, [f"{kind}.opened"])).status == 201
        send_one(broker, topic, f"{kind}.opened", "first")
        started_by(worker, workflow, {"first"})
        # Events no trigger matches: the router reads each as it comes and starts nothing.
        append_events(broker, topic, f"{kind}.ignored", BATCHES)

        send_one(broker, topic, f"{kind}.opened", "last")
        started_by(worker, workflow, {"first", "last"})


def started_by(worker: WorkerProcess, workflow: str, event_ids: set[str]) -> None:
    """Wait until executions of `workflow` started by each of `event_ids` are there."""

    def there() -> bool:
        return {e["event"]["id"] for e in executions_of(worker, workflow)} == event_ids

    # Generous: the router may be reading the fillers still.
    until(there, f"executions of {workflow} started by {sorted(event_ids)}", 120)


def send_one(broker: SuiteBroker, topic: str, event_type: str, event_id: str) -> None:
    headers, value = to_structured(CloudEvent(id=event_id, source="/tests", type=event_type))
    producer = Producer(broker.confluent({"linger.ms": 0}))
    producer.produce(topic, value, event_id.encode(), headers=headers, partition=0)
    assert producer.flush(10) == 0
