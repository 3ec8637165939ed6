"""Nothing accepted is lost for being too large (issue 14, item 1).

A start, an event or a webhook call whose record could not fit is refused before it is
accepted (413, naming the size and the limit); an event too large to start from that
reaches the router straight from Kafka lands in the dead letters with the reason; an id
the API answered with is always findable, even behind a backlog. Through all of it the
orchestrator never restarts: the worker lives on and still runs a small workflow.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from confluent_kafka import Producer
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.client_cli import Reply
from braidflow.connectors.api import MAX_BODY_BYTES
from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for

MB = 1_000_000
SIZES = (900_000, 1_000_000, 1_100_000, 2_000_000)
LIMIT = "the limit is 983,616 (BRAIDFLOW_MAX_RECORD_BYTES less headroom)"
WAIT_S = 60.0
# What the worker log shows when an agent dies or a record is refused by the producer.
CRASHES = ("crashed", "ProducerSendError", "MessageSizeTooLarge", "Traceback")


def unique() -> str:
    return f"big{uuid.uuid4().hex[:10]}"


def workflow(
    workflow_id: str, trigger: dict[str, Any] | None = None, task_input: Any = None
) -> str:
    """A task (given none of the input, unless told), then the end."""
    task = {"handler": "test.echo", "input": {"n": 1} if task_input is None else task_input}
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [trigger] if trigger else [],
            "nodes": [
                {"id": "a", "type": "task", "params": task},
                {"id": "done", "type": "end", "params": {"output": {"a": "${nodes.a.output}"}}},
            ],
            "edges": [{"from": "a", "to": "done"}],
        }
    )


def deploy(worker: WorkerProcess, text: str) -> str:
    reply = worker.api.deploy(text)
    assert reply.status in (200, 201), reply
    return str(json.loads(text)["id"])


def blob(size: int) -> dict[str, str]:
    return {"blob": "x" * size}


@pytest.fixture
def unharmed(shared_worker: WorkerProcess) -> Iterator[WorkerProcess]:
    """The shared worker; after the test, still alive, with no crash in what it logged
    meanwhile, and still running a small workflow."""
    with open(shared_worker.log_path, "rb") as log:
        log.seek(0, 2)
        start = log.tell()
    yield shared_worker
    assert shared_worker.alive, shared_worker.log_tail()
    small = deploy(shared_worker, workflow(f"{unique()}-small"))
    execution_id = shared_worker.api.start(small, {})
    assert (
        shared_worker.wait_until_finished([execution_id], WAIT_S)[execution_id]["status"]
        == "completed"
    )
    with open(shared_worker.log_path, "rb") as log:
        log.seek(start)
        logged = log.read().decode(errors="replace")
    assert not [c for c in CRASHES if c in logged], logged[-5000:]


def refused(reply: Reply, *phrases: str) -> None:
    assert reply.status == 413, reply
    message = reply.body["error"]
    assert all(p in message for p in phrases), message


def test_a_start_too_large_for_a_record_is_refused_naming_the_limit(
    unharmed: WorkerProcess,
) -> None:
    workflow_id = deploy(unharmed, workflow(unique()))
    path = f"/workflows/{workflow_id}/executions"
    for size in SIZES[1:]:
        reply = unharmed.api.post_json(path, {"input": blob(size)})
        refused(reply, "input: ", "bytes as a start record", LIMIT)
    # 0.9 MB fits a start record and a value row of its own: it runs.
    execution_id = unharmed.api.start(workflow_id, blob(SIZES[0]))
    view = unharmed.wait_until_finished([execution_id], WAIT_S)[execution_id]
    assert view["status"] == "completed", view
    assert len(view["input"]["blob"]) == SIZES[0]


def test_a_start_whose_first_step_could_not_be_stored_is_refused(unharmed: WorkerProcess) -> None:
    # The first task takes the whole input: the first step's row would hold it twice (the
    # task request and workflow.started, both kept until acknowledged).
    workflow_id = deploy(unharmed, workflow(unique(), task_input="${input}"))
    path = f"/workflows/{workflow_id}/executions"
    for size in (600_000, SIZES[0]):
        reply = unharmed.api.post_json(path, {"input": blob(size)})
        refused(reply, "input: the execution's state would be", "983,616", "BRAIDFLOW_MAX_RECORD")
    execution_id = unharmed.api.start(workflow_id, blob(300_000))
    view = unharmed.wait_until_finished([execution_id], WAIT_S)[execution_id]
    assert view["status"] == "completed", view


def test_a_body_past_the_request_limit_is_a_json_413_naming_it(unharmed: WorkerProcess) -> None:
    body = json.dumps({"input": blob(MAX_BODY_BYTES)}).encode()
    for path in ("/workflows/anything/executions", "/events"):
        reply = unharmed.api.request("POST", path, body, "application/json")
        refused(reply, f"body: over {MAX_BODY_BYTES:,} bytes")


def test_an_event_whose_starts_could_not_fit_is_refused_before_it_is_published(
    unharmed: WorkerProcess,
) -> None:
    kind = unique()
    workflow_id = deploy(unharmed, workflow(kind, {"event": {"types": [f"{kind}.arrived"]}}))

    def publish(size: int, event_id: str) -> Reply:
        event = CloudEvent(event_id, "/t", f"{kind}.arrived", data=blob(size))
        return unharmed.api.request(
            "POST", "/events", to_structured(event)[1], "application/cloudevents+json"
        )

    # The start carries the data twice (as the input, and in the event).
    refused(publish(SIZES[0], "e-0.9"), "event:", f"as the start of {workflow_id!r}", LIMIT)
    for size in SIZES[1:]:
        refused(publish(size, f"e-{size}"), "event:", "bytes as an event record", LIMIT)
    assert publish(300_000, "fits").status == 202
    [execution] = until(
        lambda: unharmed.api.get(f"/workflows/{workflow_id}/executions?status=completed").body[
            "executions"
        ],
        "the execution of the event that fits",
        WAIT_S,
    )
    assert execution["event"]["id"] == "fits"


def test_a_webhook_call_whose_start_could_not_fit_is_refused(unharmed: WorkerProcess) -> None:
    name = unique()
    deploy(unharmed, workflow(name, {"webhook": {"name": name}}))
    for size in SIZES:
        body = json.dumps(blob(size)).encode()
        reply = unharmed.api.request("POST", f"/hooks/{name}", body, "application/json")
        refused(reply, "event:", f"as the start of {name!r}", LIMIT)
    reply = unharmed.api.request(
        "POST", f"/hooks/{name}", json.dumps(blob(300_000)).encode(), "application/json"
    )
    assert reply.status == 202, reply
    [started] = reply.body["executions"]
    view = unharmed.wait_until_finished([started["execution_id"]], WAIT_S)
    assert view[started["execution_id"]]["status"] == "completed"


def test_events_too_large_to_start_from_sent_straight_to_kafka_are_dead_lettered(
    unharmed: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow_id = deploy(unharmed, workflow(kind, {"event": {"types": [f"{kind}.arrived"]}}))
    # Whatever the worker would refuse, a producer of its own may send (Tansu takes 5 MB).
    producer = Producer(broker.confluent({"message.max.bytes": 10 * MB}))
    for size in (*SIZES, 100):
        event = CloudEvent(f"raw-{size}", "/t", f"{kind}.arrived", data=blob(size))
        headers, value = to_structured(event)
        producer.produce(topic_for(event.type), value, event.id.encode(), headers=headers)
    assert producer.flush(10) == 0

    def letters() -> list[dict[str, Any]]:
        found = unharmed.api.get("/dead-letters?kind=record&limit=1000").body["dead_letters"]
        return [d for d in found if d["topic"] == f"events.{kind}"]

    until(lambda: len(letters()) == len(SIZES), f"{len(SIZES)} dead letters", WAIT_S)
    for letter in letters():
        assert "cannot start what the event triggers" in letter["reason"], letter
        assert f"as the start of {workflow_id!r}, too large" in letter["reason"], letter
        assert letter["truncated"]["value"]["size"] > 900_000, letter
        assert len(letter["value"]) < 32 * 1024
    # The small one after them was routed: the router did not stop.
    [execution] = until(
        lambda: unharmed.api.get(f"/workflows/{workflow_id}/executions?status=completed").body[
            "executions"
        ],
        "the execution of the small event",
        WAIT_S,
    )
    assert execution["event"]["id"] == "raw-100"


def test_an_accepted_id_reads_as_accepted_behind_a_backlog(unharmed: WorkerProcess) -> None:
    workflow_id = deploy(unharmed, workflow(unique()))
    path = f"/workflows/{workflow_id}/executions"
    statuses: set[str] = set()
    listings: list[list[dict[str, Any]]] = []

    def start(n: int) -> str:
        reply = unharmed.api.post_json(path, {"input": {}})
        assert reply.status == 202, reply
        execution_id = str(reply.body["execution_id"])
        # Read right after its 202, while the orchestrator works through the starts ahead
        # of it (a read after all the posts may find the backlog drained): never a 404.
        view = unharmed.api.execution(execution_id)
        assert view.status == 200, view
        assert view.body["workflow_id"] == workflow_id
        statuses.add(view.body["status"])
        if n % 100 == 50:
            listings.append(
                unharmed.api.get(f"{path}?status=accepted&limit=1000").body["executions"]
            )
        return execution_id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(start, range(3_000)))
    assert "accepted" in statuses, statuses
    listed = [e for listing in listings for e in listing]
    assert listed and all(e["accepted_at"] and e["started_at"] is None for e in listed)
    # Let the backlog drain before the next test uses the worker.
    unharmed.wait_until_finished(ids[-1:], 120)
