"""Schedules fire each slot once across workers and restarts; events start once across restarts.

The two workers' test takes its three slots as soon as they have fired (it slept 9 s).
"""

from __future__ import annotations

import json
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for

GRACE_S = 3


def every_two_seconds(workflow_id: str) -> str:
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [{"schedule": {"cron": "* * * * * */2"}}],
            "nodes": [{"id": "done", "type": "end", "params": {"output": {"at": "${event.time}"}}}],
            "edges": [],
        }
    )


def slots_started(worker: WorkerProcess, workflow_id: str) -> list[str]:
    reply = worker.api.get(f"/workflows/{workflow_id}/executions?limit=1000")
    assert reply.status == 200, reply
    return [e["event"]["id"] for e in reply.body["executions"]]


def worker_in(tmp_path: Path, broker: SuiteBroker, prefix: str, name: str) -> WorkerProcess:
    return WorkerProcess(
        broker,
        prefix,
        tmp_path / name / "data",
        tmp_path / name / "worker.log",
        env={"BRAIDFLOW_SCHEDULE_GRACE_S": str(GRACE_S)},
    )


def test_each_slot_fires_once_with_two_workers_and_missed_slots_respect_the_grace(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    first = worker_in(tmp_path, broker, prefix, "first")
    second = worker_in(tmp_path, broker, prefix, "second")
    workflow = "every-two-seconds"
    with first, second:
        first.wait_ready()
        second.wait_ready()
        assert first.api.deploy(every_two_seconds(workflow)).status == 201
        running = until(lambda: three_or_more(slots_started(first, workflow)), "3 slots", 20)
        assert len(running) >= 3, running
        # One execution per slot (ids derive from the slot), and no slot left out.
        times = sorted(slot_time(s) for s in running)
        assert len(times) == len(set(times))
        assert {round(b - a, 3) for a, b in pairwise(times)} == {2.0}
    # Every worker down for longer than the grace period: the missed slots older than
    # the grace are skipped (and logged), the ones within it fire once on start.
    down_at = time.time()
    time.sleep(GRACE_S + 5)
    with worker_in(tmp_path, broker, prefix, "first") as again:
        again.wait_ready()
        ready_at = time.time()
        time.sleep(3)
        after = slots_started(again, workflow)
        log = again.log_path.read_text()
    assert len(after) == len(set(after)), after
    assert "missed by more than the grace period" in log
    new = [slot_time(s) for s in after if s not in running]
    assert not [t for t in new if down_at + 1 < t < ready_at - GRACE_S - 1], "skipped slots fired"
    assert [t for t in new if t > ready_at - GRACE_S - 1], "the schedule did not resume"


def three_or_more(slots: list[str]) -> list[str]:
    """`slots` when there are 3 or more of them, else an empty list (a falsy value)."""
    return slots if len(slots) >= 3 else []


def slot_time(slot_id: str) -> float:
    """The slot's time in seconds, from an id `<workflow>/<trigger>/<epoch ms>`."""
    return int(slot_id.rsplit("/", 1)[1]) / 1000


def test_a_duplicate_event_after_a_restart_starts_nothing_new(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    kind = f"{prefix}r"
    workflow = f"{kind}-once"
    definition = {
        "id": workflow,
        "triggers": [{"event": {"types": [f"{kind}.happened"]}}],
        "nodes": [{"id": "done", "type": "end", "params": {"output": {}}}],
        "edges": [],
    }
    event = CloudEvent(id="only-once", source="/tests", type=f"{kind}.happened")

    def send() -> None:
        headers, value = to_structured(event)
        producer = Producer(broker.confluent())
        producer.produce(topic_for(event.type), value, b"k", headers=headers)
        assert producer.flush(10) == 0

    def started(worker: WorkerProcess, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = worker.api.get(f"/workflows/{workflow}/executions").body["executions"]
            if len(found) >= count and all(e["status"] == "completed" for e in found):
                return found
            time.sleep(0.1)
        raise AssertionError(f"{count} executions did not complete")

    with worker_in(tmp_path, broker, prefix, "before") as worker:
        worker.wait_ready()
        assert worker.api.deploy(json.dumps(definition)).status == 201
        send()
        before = started(worker, 1)
    # A new worker with an empty data directory: what it knows comes from Kafka.
    with worker_in(tmp_path, broker, prefix, "after") as worker:
        worker.wait_ready()
        send()
        time.sleep(2)
        assert started(worker, 1) == before
