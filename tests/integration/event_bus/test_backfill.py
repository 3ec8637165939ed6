"""A deployment is started only by events from after it; backfill replays the rest, once.

Events "published hours before" carry a record timestamp set by their producer,
as another program's would.
"""

from __future__ import annotations

import json
import time
from typing import Any

from click.testing import CliRunner
from confluent_kafka import Producer
from domain_events import WAITER, completed, executions_of, on_event, send, unique
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.client_cli import backfill
from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for

HOUR_MS = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def send_at(broker: SuiteBroker, event: CloudEvent, timestamp_ms: int) -> None:
    """Publish `event` as if it had been published at `timestamp_ms`."""
    headers, value = to_structured(event)
    producer = Producer(broker.confluent())
    producer.produce(
        topic_for(event.type), value, event.id.encode(), headers=headers, timestamp=timestamp_ms
    )
    assert producer.flush(10) == 0


def started_by(worker: WorkerProcess, workflow_id: str) -> list[str]:
    return sorted(e["event"]["id"] for e in executions_of(worker, workflow_id, limit=100))


def test_events_from_before_the_deployment_start_nothing_until_backfilled_once(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = f"{kind}-flow"
    for n in (1, 2, 3):
        opened = CloudEvent(id=f"old-{n}", source="/t", type=f"{kind}.opened", data={"n": n})
        send_at(broker, opened, now_ms() - 2 * HOUR_MS + n)
    # Another type on the same topic: read by the backfill, matched by nothing.
    send_at(broker, CloudEvent(id="other", source="/t", type=f"{kind}.closed"), now_ms() - HOUR_MS)
    # Its router reads the topic from its beginning: the history is seen, and must start nothing.
    assert shared_worker.api.deploy(on_event(workflow, [f"{kind}.opened"])).status == 201
    send(broker, CloudEvent(id="new-1", source="/t", type=f"{kind}.opened", data={"n": 4}))
    completed(shared_worker, workflow, 1)
    time.sleep(1.5)
    assert started_by(shared_worker, workflow) == ["new-1"]

    reply = shared_worker.api.post_json(
        f"/workflows/{workflow}/backfill",
        {"from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 3600))},
    )
    assert reply.status == 200, reply
    assert reply.body["matched"] == 4
    assert (reply.body["started"], reply.body["already_started"]) == (3, 1)
    assert reply.body["read"] == 5
    completed(shared_worker, workflow, 4)
    assert started_by(shared_worker, workflow) == ["new-1", "old-1", "old-2", "old-3"]

    # Again, by the command line: everything is already started.
    api = shared_worker.api.base_url
    again = CliRunner(env={"BRAIDFLOW_API_KEY": shared_worker.api.key}).invoke(
        backfill, [workflow, "--from", "-3h", "--api", api]
    )
    assert again.exit_code == 0, again.output
    assert "4 events matched" in again.output and "0 started, 4 already started" in again.output
    time.sleep(1.5)
    assert len(executions_of(shared_worker, workflow, limit=100)) == 4


def test_a_range_that_leaves_out_some_events_starts_only_those_inside(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = f"{kind}-flow"
    hours_ago = {"five": 5, "three": 3, "one": 1}
    for name, hours in hours_ago.items():
        event = CloudEvent(id=name, source="/t", type=f"{kind}.opened")
        send_at(broker, event, now_ms() - hours * HOUR_MS)
    assert shared_worker.api.deploy(on_event(workflow, [f"{kind}.*"])).status == 201
    # Once this one has started, the router has read the history too.
    send(broker, CloudEvent(id="now", source="/t", type=f"{kind}.opened"))
    completed(shared_worker, workflow, 1)

    def iso(hours: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - hours * 3600))

    reply = shared_worker.api.post_json(
        f"/workflows/{workflow}/backfill", {"from": iso(4), "to": iso(2)}
    )
    assert reply.status == 200, reply
    assert (reply.body["matched"], reply.body["started"]) == (1, 1)
    completed(shared_worker, workflow, 2)
    time.sleep(1.0)
    assert started_by(shared_worker, workflow) == ["now", "three"]


def test_backfill_refuses_what_it_cannot_do_naming_why(shared_worker: WorkerProcess) -> None:
    kind = unique()
    with_events, hooked = f"{kind}-events", f"{kind}-hooked"
    assert shared_worker.api.deploy(on_event(with_events, [f"{kind}.opened"])).status == 201
    definition: dict[str, Any] = json.loads(on_event(hooked, ["unused.never"]))
    definition["triggers"] = [{"webhook": {"name": f"{kind}-hook"}}]
    assert shared_worker.api.deploy(json.dumps(definition)).status == 201

    def ask(workflow: str, body: dict[str, Any]) -> Any:
        return shared_worker.api.post_json(f"/workflows/{workflow}/backfill", body)

    a_day = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    unknown = ask(f"{kind}-nobody", a_day)
    assert unknown.status == 404 and f"{kind}-nobody" in unknown.body["error"]
    no_triggers = ask(hooked, a_day)
    assert no_triggers.status == 422 and "no event triggers" in no_triggers.body["error"]
    too_long = ask(with_events, {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"})
    assert too_long.status == 422 and "31 days" in too_long.body["error"], too_long
    backwards = ask(with_events, {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
    assert backwards.status == 422 and "from: must be before to" in backwards.body["error"]
    undated = ask(with_events, {"from": "yesterday"})
    assert undated.status == 400 and undated.body["error"].startswith("from: 'yesterday'")
    missing = ask(with_events, {})
    assert missing.status == 400 and missing.body["error"].startswith("from:")


def test_a_wait_is_not_fed_events_from_before_its_workflow_could_wait(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = f"{kind}-waiter"
    # Older than the hour an event is kept for waits that begin later (event_ttl_s).
    old = CloudEvent(
        id="old", source="/t", type=f"{kind}.resolved", data={"ticket": 1, "by": "old"}
    )
    send_at(broker, old, now_ms() - 3 * HOUR_MS)
    deployed = shared_worker.api.deploy(WAITER.format(id=workflow, kind=kind, timeout="60s"))
    assert deployed.status == 201
    # Recent enough to be kept: a wait that begins after it still sees it.
    recent = CloudEvent(
        id="recent", source="/t", type=f"{kind}.resolved", data={"ticket": 2, "by": "ada"}
    )
    send_at(broker, recent, now_ms() - 60_000)
    time.sleep(1.5)
    first = shared_worker.api.start(workflow, {"ticket": 1})
    second = shared_worker.api.start(workflow, {"ticket": 2})
    assert shared_worker.wait_until_finished([second])[second]["output"] == {"by": "ada"}
    time.sleep(1.0)
    assert shared_worker.api.execution(first).body["status"] == "running"
    send(
        broker,
        CloudEvent(id="new", source="/t", type=f"{kind}.resolved", data={"ticket": 1, "by": "bo"}),
    )
    finished = until(
        lambda: shared_worker.api.execution(first).body.get("output"), "ticket 1 resolved"
    )
    assert finished == {"by": "bo"}
