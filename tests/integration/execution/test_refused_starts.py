"""A start accepted and then refused by the orchestrator reads as failed with the reason.

The API checks what it can before answering 202, but the orchestrator may still refuse a
start it can never apply (its workflow version unknown to it, an engine error). The id
was answered, so it must not read as `accepted` for ever, nor as unknown.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Producer
from workers import WorkerProcess

from braidflow.engine import StartExecution
from braidflow.schemas import encode_event, encode_transition
from braidflow.schemas.lifecycle_events import START_REFUSED, accepted_event, lifecycle_headers

WAIT_S = 30.0


def test_an_accepted_start_of_an_unknown_version_reads_as_failed_with_the_reason(
    shared_worker: WorkerProcess,
) -> None:
    execution_id = uuid.uuid4().hex
    start = StartExecution(
        f"{execution_id}/start", execution_id, int(time.time() * 1000), "nowhere", 7, {}
    )
    accepted = accepted_event(start)
    key = execution_id.encode()
    # What an accepting worker writes: the acceptance, then the start.
    producer = Producer(shared_worker.broker.confluent())
    producer.produce(
        f"{shared_worker.prefix}.lifecycle",
        encode_event(accepted),
        key,
        headers=lifecycle_headers(accepted.id, key),
    )
    producer.produce(f"{shared_worker.prefix}.transitions", encode_transition(start), key)
    assert producer.flush(10) == 0

    deadline = time.monotonic() + WAIT_S
    seen = []
    while time.monotonic() < deadline:
        reply = shared_worker.api.execution(execution_id)
        assert reply.status == 200, reply
        seen.append(reply.body["status"])
        if reply.body["status"] == "failed":
            break
        time.sleep(0.2)
    assert seen[-1] == "failed", seen
    assert reply.body["error"] == {
        "type": START_REFUSED,
        "message": "unknown workflow 'nowhere' version 7",
        "node_id": None,
    }
    letters = shared_worker.api.get("/dead-letters?kind=record").body["dead_letters"]
    assert any(
        letter.get("reason") == "unknown workflow 'nowhere' version 7" for letter in letters
    ), letters
