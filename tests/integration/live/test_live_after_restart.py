"""A worker keeps lifecycle events in memory: after a restart it reads them again, so every
stream replays an execution that ran before, and resumes from `Last-Event-ID`."""

from __future__ import annotations

import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from live_streams import SPLIT_MEET_EDGES, read_stream
from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.connectors.broker import SETTLING_KEY

DEPARTMENT = "kind: Department\nname: {name}\ndescription: restart\n"
FAN_OUT = (
    """
id: {id}
department: {department}
nodes:
  - {{id: split, type: parallel}}
  - {{id: left, type: task, params: {{handler: test.echo, input: {{value: 1}}}}}}
  - {{id: right, type: task, params: {{handler: test.echo, input: {{value: 2}}}}}}
  - {{id: meet, type: join, params: {{wait_for: all, merge: object}}}}
  - {{id: done, type: end}}
"""
    + SPLIT_MEET_EDGES
)


def settle_lifecycle(broker: SuiteBroker, prefix: str) -> None:
    """Tansu 0.6 answers a partition's end as its last batch's base offset plus one (see
    `settle_changelogs`): short of what the execution index stored, so a restarted worker
    would rebuild its index from the topic's start, feed and all, and the restart test
    nothing. A record alone in each partition's last batch makes the end true; the index
    and the feed skip it (no value, no CloudEvents headers)."""
    if not broker.embedded:
        return
    topic = f"{prefix}.lifecycle"
    partitions = AdminClient(broker.confluent()).list_topics(topic, timeout=10).topics[topic]
    producer = Producer(broker.confluent({"linger.ms": 0}))
    for partition in partitions.partitions:
        producer.produce(topic, None, SETTLING_KEY, partition=partition)
        assert producer.flush(10) == 0, f"{topic}[{partition}] took no closing record"


def test_a_restarted_worker_replays_an_earlier_execution_and_resumes_every_stream(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(broker, prefix, tmp_path / "data", tmp_path / "worker.log")
    department, workflow_id = f"restart-{uuid.uuid4().hex[:6]}", f"fan-{uuid.uuid4().hex[:6]}"
    with worker:
        api = worker.wait_ready().api
        assert api.deploy(DEPARTMENT.format(name=department)).status == 201
        deployed = api.deploy(FAN_OUT.format(id=workflow_id, department=department))
        assert deployed.status == 201, deployed
        execution_id = api.start(workflow_id, {})
        before = read_stream(api, f"/executions/{execution_id}/events")
        assert before.types[-1] == "workflow.completed", before.types
    settle_lifecycle(broker, prefix)
    # The same data dir: its execution index has read the topic, the feed held in memory not.
    with worker:
        api = worker.wait_ready().api
        again = read_stream(api, f"/executions/{execution_id}/events")
        assert again.ended
        assert [e.id for e in again.events] == [e.id for e in before.events], again.types
        middle = len(before.events) // 2
        for path in (f"/workflows/{workflow_id}/events", f"/departments/{department}/events"):
            resumed = read_stream(
                api, path, last_event_id=before.events[middle].id, until_id=before.events[-1].id
            )
            after = [e.id for e in resumed.events]
            assert after == [e.id for e in before.events[middle + 1 :]], (path, resumed.types)
