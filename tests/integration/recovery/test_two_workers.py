"""Two workers sharing the partitions: each runs part of the executions, and either one answers
for any execution, forwarding the read to the worker that holds it."""

from __future__ import annotations

import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from domain_events import on_event
from fan_ins import fan_in
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.connectors.api import FORWARDED_HEADER
from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for

ECHO = fan_in(
    "shared-echo",
    {
        "left": '{handler: test.echo, input: {n: "${input.n}"}}',
        "right": '{handler: test.echo, input: {n: "${input.n * 2}"}}',
    },
    {
        "done": "type: end, params: {output: "
        '{left: "${nodes.both.output.left.n}", right: "${nodes.both.output.right.n}"}}'
    },
)
EXECUTIONS = 20


def test_either_worker_answers_for_every_execution(pair: list[WorkerProcess]) -> None:
    first, second = pair
    assert first.api.deploy(ECHO).status == 201
    # The other worker learns of the deployment from the workflows topic, a moment later.
    deadline = time.monotonic() + 10
    while second.api.get("/workflows/shared-echo").status != 200:
        if time.monotonic() > deadline:
            second.fail("never saw the workflow deployed through the first worker")
        time.sleep(0.05)

    ids = {pair[n % 2].api.start("shared-echo", {"n": n}): n for n in range(EXECUTIONS)}
    finished = first.wait_until_finished(ids, 30)
    for execution_id, n in ids.items():
        assert finished[execution_id]["status"] == "completed", finished[execution_id]
        assert finished[execution_id]["output"] == {"left": n, "right": 2 * n}

    owners: dict[str, list[int]] = {}
    for execution_id in ids:
        answers = [w.api.execution(execution_id) for w in pair]
        assert answers[0] == answers[1], f"{execution_id}: {answers}"
        assert answers[0].status == 200 and answers[0].body["status"] == "completed"
        # Asked not to forward, only the worker holding the execution has it.
        local = [
            w.api.request("GET", f"/executions/{execution_id}", headers={FORWARDED_HEADER: "1"})
            for w in pair
        ]
        owners[execution_id] = [i for i, reply in enumerate(local) if reply.status == 200]
        assert all(r.status in (200, 404) for r in local), local
    assert all(len(o) == 1 for o in owners.values()), owners
    # Both workers hold some: so half the answers above were forwarded.
    assert {o[0] for o in owners.values()} == {0, 1}, owners


STRICT = """
id: shared-strict
nodes:
  - id: check
    type: task
    params: {handler: test.strict, input: {fixed: false}}
    retry: {max_attempts: 2, initial: 50ms}
  - {id: done, type: end, params: {output: {ok: "${nodes.check.output.fixed}"}}}
edges:
  - {from: check, to: done}
"""


def test_an_id_accepted_by_one_worker_reads_as_accepted_through_the_other(
    pair: list[WorkerProcess],
) -> None:
    first, second = pair
    assert first.api.deploy(ECHO).status == 201
    until(lambda: second.api.get("/workflows/shared-echo").status == 200, "the deployment")
    # Each start read back at once through the second worker, which forwards to whichever
    # worker owns it, while eight threads keep a backlog of starts ahead of it. A read taken
    # after the whole batch could find every start applied on a machine where the engine
    # keeps up (CI once saw only running and completed).

    def start_and_read(n: int) -> tuple[str, Any]:
        execution_id = first.api.start("shared-echo", {"n": n})
        return execution_id, second.api.execution(execution_id)

    with ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(start_and_read, range(1_000)))
    ids = [execution_id for execution_id, _ in pairs]
    answers = [answer for _, answer in pairs]
    assert all(a.status == 200 for a in answers), [a for a in answers if a.status != 200][:3]
    statuses = {a.body["status"] for a in answers}
    assert "accepted" in statuses, statuses
    assert first.wait_until_finished(ids[-1:], 120)[ids[-1]]["status"] == "completed"


def test_a_redrive_through_one_worker_shows_on_both(pair: list[WorkerProcess]) -> None:
    first, second = pair
    assert first.api.deploy(STRICT).status == 201
    until(lambda: second.api.get("/workflows/shared-strict").status == 200, "the deployment")
    execution = second.api.start("shared-strict", {})
    assert first.wait_until_finished([execution], 30)[execution]["status"] == "failed"

    def letters(worker: WorkerProcess) -> list[dict[str, Any]]:
        reply = worker.api.get("/dead-letters?workflow=shared-strict&kind=node")
        return [d for d in reply.body["dead_letters"] if d["execution_id"] == execution]

    [dead] = until(lambda: letters(first), "the dead letter on the first worker")
    until(lambda: letters(second), "the dead letter on the second worker")
    path = f"/dead-letters/{urllib.parse.quote(dead['id'], safe='')}/redrive"
    assert first.api.post_json(path, {"input": {"fixed": True}}).status == 202
    # The second worker took no part in the redrive, and still shows it.
    [marked] = until(
        lambda: [d for d in letters(second) if d["redriven_at"] is not None],
        "the redrive mark on the second worker",
    )
    assert marked["id"] == dead["id"]
    assert second.wait_until_finished([execution], 30)[execution]["output"] == {"ok": True}


def test_events_right_after_a_deploy_meet_its_triggers_on_either_worker(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    """The router reads its catalog up to date before each batch: the worker that did not
    take the deploy routes its share of the events as the one that did."""
    first = WorkerProcess(broker, prefix, tmp_path / "first", tmp_path / "first.log")
    # Its catalog follows the workflows topic seconds behind, unless asked to catch up.
    second = WorkerProcess(
        broker,
        prefix,
        tmp_path / "second",
        tmp_path / "second.log",
        env={"BRAIDFLOW_BACKGROUND_FETCH_WAIT_MS": "3000"},
    )
    kind = f"d{uuid.uuid4().hex[:10]}"
    with first, second:
        for worker in (first, second, first, second):
            worker.wait_ready()
        assert first.api.deploy(on_event(f"{kind}-warm", [f"{kind}.warm"])).status == 201
        # Both routers hold their partitions of the topic before the deploy under test.
        warm = [CloudEvent(id=f"warm-{n}", source="/t", type=f"{kind}.warm") for n in range(16)]
        publish(broker, warm)
        listed(first, f"{kind}-warm", 16)
        assert first.api.deploy(on_event(f"{kind}-new", [f"{kind}.new"])).status == 201
        new = [CloudEvent(id=f"new-{n}", source="/t", type=f"{kind}.new") for n in range(16)]
        publish(broker, new)
        listed(first, f"{kind}-new", 16)


def publish(broker: SuiteBroker, events: list[CloudEvent]) -> None:
    producer = Producer(broker.confluent({"linger.ms": 0}))
    for event in events:
        headers, value = to_structured(event)
        producer.produce(topic_for(event.type), value, event.id.encode(), headers=headers)
    assert producer.flush(10) == 0


def listed(worker: WorkerProcess, workflow_id: str, count: int) -> None:
    """Wait until `count` executions of the workflow are listed (started, by either worker)."""
    deadline = time.monotonic() + 30
    while True:
        reply = worker.api.get(f"/workflows/{workflow_id}/executions?limit=100")
        found = len(reply.body.get("executions", ())) if reply.status == 200 else 0
        if found >= count:
            return
        if time.monotonic() > deadline:
            worker.fail(f"{found} of {count} executions of {workflow_id} started")
        time.sleep(0.1)
