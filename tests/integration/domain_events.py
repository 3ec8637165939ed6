"""Domain events sent to a worker on the suite's broker, and the executions they start: shared
by the event bus, backfill and two-worker tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

from confluent_kafka import Producer
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.schemas.cloudevents import (
    CloudEvent,
    to_binary,
    to_structured,
    topic_for,
)

WAIT_S = 30.0


def unique() -> str:
    return f"e{uuid.uuid4().hex[:10]}"


def executions_of(worker: WorkerProcess, workflow_id: str, **query: Any) -> list[dict[str, Any]]:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    reply = worker.api.get(f"/workflows/{workflow_id}/executions?{params}")
    assert reply.status == 200, reply
    return reply.body["executions"]


def completed(worker: WorkerProcess, workflow_id: str, count: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        found = executions_of(worker, workflow_id, status="completed")
        return found if len(found) >= count else None

    return until(enough, f"{count} completed executions of {workflow_id}")


def send(broker: SuiteBroker, event: CloudEvent, *, binary: bool = False) -> None:
    headers, value = (to_binary if binary else to_structured)(event)
    producer = Producer(broker.confluent({"partitioner": "murmur2_random"}))
    producer.produce(topic_for(event.type), value, event.id.encode(), headers=headers)
    assert producer.flush(10) == 0


def on_event(workflow_id: str, types: list[str], when: str | None = None) -> str:
    trigger: dict[str, Any] = {"types": types}
    if when:
        trigger["when"] = when
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [{"event": trigger}],
            "nodes": [
                {
                    "id": "done",
                    "type": "end",
                    "params": {"output": {"got": "${event.data}", "type": "${event.type}"}},
                }
            ],
            "edges": [],
        }
    )


WAITER = """
id: {id}
nodes:
  - {{id: wait, type: wait_event, params: {{type: "{kind}.resolved", correlate: "event.data.ticket == input.ticket"}}, timeout: {timeout}}}
  - {{id: done, type: end, params: {{output: {{by: "${{nodes.wait.output.data.by}}"}}}}}}
  - {{id: late, type: end, params: {{output: {{timed_out: true}}}}}}
edges:
  - {{from: wait, to: done}}
  - {{from: wait, to: late, timeout: true}}
"""
