"""A worker upgraded in place neither counts the lifecycle topic again nor skips it: the stats'
own consumer group, with nothing committed yet, starts where the reader of the version before
(Faust's agent, in the app's group: the prefix) had got to."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from suite_broker import SuiteBroker
from topic_records import topic_partitions
from waiting import until
from workers import WorkerProcess

from braidflow.engine import LifecycleEvent
from braidflow.schemas import encode_event

FLOW = """
id: upgraded
nodes:
  - {id: done, type: end}
edges: []
"""
COUNTED_BEFORE = 5
# As the workers of the suite make their topics (BRAIDFLOW_PARTITIONS).
PARTITIONS = 4


def test_an_upgraded_worker_goes_on_from_where_the_former_stats_reader_was(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    # Executions the former reader had counted, and its group's position after them.
    topic = f"{prefix}.lifecycle"
    admin = AdminClient(broker.confluent())
    for made in admin.create_topics([NewTopic(topic, PARTITIONS)]).values():
        made.result(30)
    producer = Producer(broker.confluent())
    now = int(time.time() * 1000)
    for _ in range(COUNTED_BEFORE):
        execution = str(uuid.uuid4())
        event = LifecycleEvent(f"{execution}/started", "workflow.started", execution,
                               "upgraded", 1, now)  # fmt: skip
        producer.produce(topic, encode_event(event), execution.encode())
        # A batch each: Tansu tells a partition's end by its last batch's first offset.
        assert producer.flush(10) == 0
    former = Consumer(broker.confluent({"group.id": prefix}))
    try:
        ends = [
            TopicPartition(topic, p, former.get_watermark_offsets(TopicPartition(topic, p))[1])
            for p in topic_partitions(broker, topic, admin)
        ]
        former.commit(offsets=ends, asynchronous=False)
    finally:
        former.close()

    worker = WorkerProcess(broker, prefix, tmp_path / "data", tmp_path / "worker.log")
    worker.start().wait_ready()
    try:
        assert worker.api.deploy(FLOW).status == 201
        worker.wait_until_finished([worker.api.start("upgraded", {})])

        def counted() -> dict[str, int] | None:
            buckets = worker.api.get("/stats?workflow=upgraded&window=1h").body["buckets"]
            total = {n: sum(b[n] for b in buckets) for n in ("started", "completed")}
            return total if total["completed"] >= 1 else None

        assert until(counted, what="the stats counting the execution") == {
            "started": 1,
            "completed": 1,
        }
    finally:
        worker.stop()
