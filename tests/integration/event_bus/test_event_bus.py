"""Domain events start workflows and reach waiting executions, on the real broker.

Each test uses event types of its own (`<unique>.<verb>`), so its events topic
(`events.<unique>`) is new: it exists only after the worker's router started,
which also checks that the router picks up new topics by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer
from domain_events import WAIT_S, WAITER, completed, executions_of, on_event, send, unique
from suite_broker import SuiteBroker
from topic_records import TopicReader
from waiting import until
from workers import WorkerProcess

from braidflow.client import EventPublisher
from braidflow.schemas import decode_event
from braidflow.schemas.cloudevents import (
    CloudEvent,
    from_kafka,
)
from braidflow.schemas.dead_letters import DeadLetter, decode_dead_letter

SECRET = "s3cret"  # the shared worker's BRAIDFLOW_WEBHOOK_SECRET_SIGNED_HOOK


def letters_from(reader: TopicReader, topic: str) -> list[DeadLetter]:
    """The record dead letters the reader has seen so far of records from `topic`."""
    decoded = [decode_dead_letter(r.value) for r in reader.records if r.value]
    return [d for d in decoded if isinstance(d, DeadLetter) and d.topic == topic]


def test_structured_and_binary_events_start_the_subscribed_workflows_once(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    glob_workflow, filtered = f"{kind}-any", f"{kind}-high"
    assert shared_worker.api.deploy(on_event(glob_workflow, [f"{kind}.*"])).status == 201
    assert (
        shared_worker.api.deploy(
            on_event(filtered, [f"{kind}.opened"], when="event.data.priority == 'high'")
        ).status
        == 201
    )
    low = CloudEvent(id="1", source="/tests", type=f"{kind}.opened", data={"priority": "low"})
    high = CloudEvent(id="2", source="/tests", type=f"{kind}.opened", data={"priority": "high"})
    send(broker, low)
    send(broker, high, binary=True)
    send(broker, high, binary=True)  # the same event again: no second start
    started = completed(shared_worker, glob_workflow, 2)
    assert sorted(e["event"]["id"] for e in started) == ["1", "2"]
    only = completed(shared_worker, filtered, 1)
    assert only[0]["event"] == {"id": "2", "type": f"{kind}.opened", "source": "/tests"}
    view = shared_worker.api.execution(only[0]["execution_id"]).body
    assert view["output"] == {"got": {"priority": "high"}, "type": f"{kind}.opened"}
    time.sleep(1.0)
    assert len(executions_of(shared_worker, glob_workflow)) == 2
    assert len(executions_of(shared_worker, filtered)) == 1


def test_the_python_client_and_the_api_publish_events_that_trigger(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = f"{kind}-flow"
    assert shared_worker.api.deploy(on_event(workflow, [f"{kind}.created"])).status == 201
    with EventPublisher(broker.connection, source="/tests/client") as publisher:
        publisher.publish(f"{kind}.created", {"n": 1})
    reply = shared_worker.api.post_json(
        "/events",
        {"specversion": "1.0", "id": "api-1", "source": "/tests/api", "type": f"{kind}.created"},
    )
    assert reply.status == 202, reply
    assert reply.body["topic"] == f"events.{kind}"
    completed(shared_worker, workflow, 2)
    missing = shared_worker.api.post_json(
        "/events", {"specversion": "1.0", "source": "/x", "type": f"{kind}.created"}
    )
    assert missing.status == 400
    assert missing.body["field"] == "id"


def test_webhooks_start_their_workflows_and_check_signatures(
    shared_worker: WorkerProcess,
) -> None:
    workflow = f"{unique()}-hooked"
    definition = json.loads(on_event(workflow, ["unused.never"]))
    definition["triggers"] = [{"webhook": {"name": "signed-hook"}}]
    assert shared_worker.api.deploy(json.dumps(definition)).status == 201
    body = json.dumps({"ticket": 7}).encode()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    def hook(signature: str | None) -> Any:
        headers = {"Idempotency-Key": "delivery-1"}
        if signature:
            headers["X-Braidflow-Signature"] = signature
        return shared_worker.api.request(
            "POST", "/hooks/signed-hook", body, "application/json", headers
        )

    assert hook(None).status == 401
    assert hook("sha256=" + "0" * 64).status == 401
    accepted = hook(good)
    assert accepted.status == 202, accepted
    ids = [e["execution_id"] for e in accepted.body["executions"] if e["workflow_id"] == workflow]
    assert len(ids) == 1
    assert hook(good).body["executions"] == accepted.body["executions"]  # same delivery, same id
    view = shared_worker.wait_until_finished(ids)[ids[0]]
    assert view["output"]["got"] == {"ticket": 7}
    assert (
        shared_worker.api.request("POST", "/hooks/nobody", b"{}", "application/json").status == 404
    )


def waiter(worker: WorkerProcess, kind: str, timeout: str = "60s") -> str:
    """Deploy a workflow waiting for `<kind>.resolved` of its input's ticket; its id."""
    workflow = f"{kind}-waiter"
    assert worker.api.deploy(WAITER.format(id=workflow, kind=kind, timeout=timeout)).status == 201
    return workflow


def resolved(broker: SuiteBroker, kind: str, event_id: str, **data: Any) -> None:
    """Publish a `<kind>.resolved` event with `data` (a ticket and who resolved it)."""
    send(broker, CloudEvent(id=event_id, source="/t", type=f"{kind}.resolved", data=data))


def test_a_waiting_execution_continues_with_the_event_that_correlates(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = waiter(shared_worker, kind)
    # Before the wait begins: kept, then delivered when it does.
    resolved(broker, kind, "early", ticket=1, by="ada")
    time.sleep(1.0)
    first = shared_worker.api.start(workflow, {"ticket": 1})
    second = shared_worker.api.start(workflow, {"ticket": 2})
    assert shared_worker.wait_until_finished([first])[first]["output"] == {"by": "ada"}
    waiting = shared_worker.api.execution(second).body
    assert waiting["status"] == "running"
    # After the wait began; another ticket's event must not wake it.
    resolved(broker, kind, "other", ticket=9, by="x")
    resolved(broker, kind, "late", ticket=2, by="bob")
    assert shared_worker.wait_until_finished([second])[second]["output"] == {"by": "bob"}


def test_kept_events_past_the_record_limit_make_room_and_waits_go_on(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = waiter(shared_worker, kind)
    # Kept together, these three would make a waits row over the 1 MB a record may hold.
    for n in (1, 2, 3):
        resolved(broker, kind, f"bulky-{n}", ticket=100 + n, by="x", blob="x" * 350_000)
    # Each on a partition of its own: which one is oldest is known only once all three are in.
    until(
        lambda: "dropped the 1 oldest kept events" in shared_worker.log(),
        "the oldest kept event to be dropped",
    )
    resolved(broker, kind, "small", ticket=5, by="al")
    time.sleep(1.0)
    early = shared_worker.api.start(workflow, {"ticket": 5})
    assert shared_worker.wait_until_finished([early])[early]["output"] == {"by": "al"}
    # Two of the three bulky ones are still kept for later waits.
    late = [shared_worker.api.start(workflow, {"ticket": 100 + n}) for n in (1, 2, 3)]

    def two_done() -> list[dict[str, Any]] | None:
        # An execution not stored yet answers 404, with no status.
        views = [shared_worker.api.execution(e).body for e in late]
        done = [v for v in views if v.get("status") == "completed"]
        return views if len(done) == 2 and all("status" in v for v in views) else None

    views = until(two_done, "two of the three to complete")
    assert sorted(v["status"] for v in views) == ["completed", "completed", "running"]
    assert all(v["output"] == {"by": "x"} for v in views if v["status"] == "completed")


def test_a_wait_that_times_out_takes_its_timeout_edge(shared_worker: WorkerProcess) -> None:
    workflow = waiter(shared_worker, unique(), timeout="1s")
    execution = shared_worker.api.start(workflow, {"ticket": 3})
    view = shared_worker.wait_until_finished([execution])[execution]
    assert view["output"] == {"timed_out": True}


def test_a_workflow_triggers_on_another_workflows_completion(shared_worker: WorkerProcess) -> None:
    kind = unique()
    first, follower = f"{kind}-first", f"{kind}-follower"
    definition = json.loads(
        on_event(
            follower,
            ["braidflow.workflow.completed"],
            when=f"event.data.workflow_id == '{first}'",
        )
    )
    assert shared_worker.api.deploy(json.dumps(definition)).status == 201
    plain = {
        "id": first,
        "nodes": [{"id": "done", "type": "end", "params": {"output": {"ok": True}}}],
        "edges": [],
    }
    assert shared_worker.api.deploy(json.dumps(plain)).status == 201
    execution = shared_worker.api.start(first, {})
    shared_worker.wait_until_finished([execution])
    followed = completed(shared_worker, follower, 1)
    view = shared_worker.api.execution(followed[0]["execution_id"]).body
    assert view["output"]["got"]["execution_id"] == execution
    assert view["output"]["type"] == "braidflow.workflow.completed"


def test_completions_from_before_a_lifecycle_trigger_was_deployed_start_nothing(
    shared_worker: WorkerProcess,
) -> None:
    kind = unique()
    first, follower = f"{kind}-first", f"{kind}-follower"
    plain = {
        "id": first,
        "nodes": [{"id": "done", "type": "end", "params": {"output": {"ok": True}}}],
        "edges": [],
    }
    assert shared_worker.api.deploy(json.dumps(plain)).status == 201
    earlier = shared_worker.api.start(first, {})
    shared_worker.wait_until_finished([earlier])
    follow = on_event(
        follower, ["braidflow.workflow.completed"], when=f"event.data.workflow_id == '{first}'"
    )
    assert shared_worker.api.deploy(follow).status == 201
    later = shared_worker.api.start(first, {})
    shared_worker.wait_until_finished([later])
    [followed] = completed(shared_worker, follower, 1)
    assert (
        shared_worker.api.execution(followed["execution_id"]).body["output"]["got"]["execution_id"]
        == later
    )
    time.sleep(1.5)
    assert len(executions_of(shared_worker, follower, status="completed")) == 1


def test_malformed_events_go_to_the_dead_letter_topic_and_valid_ones_still_trigger(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = f"{kind}-survivor"
    assert shared_worker.api.deploy(on_event(workflow, [f"{kind}.ok"])).status == 201
    topic = f"events.{kind}"
    send(broker, CloudEvent(id="before", source="/t", type=f"{kind}.ok"))
    producer = Producer(broker.confluent())
    for i in range(1000):
        producer.produce(topic, b"not a cloud event", f"bad-{i}".encode())
        producer.poll(0)
    assert producer.flush(10) == 0
    send(broker, CloudEvent(id="after", source="/t", type=f"{kind}.ok"))
    completed(shared_worker, workflow, 2)
    with TopicReader(broker, f"{shared_worker.prefix}.dead-letters") as reader:
        reader.until(lambda _: len(letters_from(reader, topic)) >= 1000, WAIT_S)
        assert all("not a CloudEvent" in d.reason for d in letters_from(reader, topic))
    # Counted by the worker, though its router process wrote them.
    metrics = shared_worker.api.get("/metrics").body
    counted = re.search(
        rf'braidflow_dead_letters_total{{kind="record",topic="{topic}"}} (\S+)', metrics
    )
    assert counted and float(counted.group(1)) >= 1000, metrics


def test_an_event_too_large_to_start_from_is_dead_lettered_and_routing_goes_on(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = f"{kind}-bulky"
    assert shared_worker.api.deploy(on_event(workflow, [f"{kind}.ok"])).status == 201
    # The start carries the data twice (as input and in the event): past the 1 MB a record may have.
    bulky = {"blob": "x" * 600_000}
    send(broker, CloudEvent(id="bulky", source="/t", type=f"{kind}.ok", data=bulky))
    send(broker, CloudEvent(id="after", source="/t", type=f"{kind}.ok", data={"n": 1}))
    [started] = completed(shared_worker, workflow, 1)
    assert started["event"]["id"] == "after"
    with TopicReader(broker, f"{shared_worker.prefix}.dead-letters") as reader:
        reader.until(lambda _: letters_from(reader, f"events.{kind}"), WAIT_S)
        [letter] = letters_from(reader, f"events.{kind}")
    assert "cannot start what the event triggers" in letter.reason
    assert "too large" in letter.reason.lower()


def test_a_publish_node_triggers_the_workflows_subscribed_to_its_event(
    shared_worker: WorkerProcess,
) -> None:
    kind = unique()
    publisher, listener = f"{kind}-publisher", f"{kind}-listener"
    assert shared_worker.api.deploy(on_event(listener, [f"{kind}.announced"])).status == 201
    text = f"""
id: {publisher}
nodes:
  - {{id: tell, type: publish, params: {{type: "{kind}.announced", subject: "${{input.who}}", data: {{who: "${{input.who}}"}}}}}}
  - {{id: done, type: end, params: {{output: {{sent: "${{nodes.tell.output.id}}"}}}}}}
edges:
  - {{from: tell, to: done}}
"""
    assert shared_worker.api.deploy(text).status == 201
    execution = shared_worker.api.start(publisher, {"who": "ada"})
    sent = shared_worker.wait_until_finished([execution])[execution]["output"]["sent"]
    heard = completed(shared_worker, listener, 1)
    assert heard[0]["event"]["id"] == sent
    view = shared_worker.api.execution(heard[0]["execution_id"]).body
    assert view["output"] == {"got": {"who": "ada"}, "type": f"{kind}.announced"}


def test_a_publish_node_whose_type_names_no_topic_fails_and_the_worker_goes_on(
    shared_worker: WorkerProcess,
) -> None:
    workflow = f"{unique()}-teller"
    text = f"""
id: {workflow}
nodes:
  - {{id: tell, type: publish, params: {{type: "${{input.kind}}", data: {{}}}}}}
  - {{id: done, type: end}}
edges:
  - {{from: tell, to: done}}
"""
    assert shared_worker.api.deploy(text).status == 201
    bad = shared_worker.api.start(workflow, {"kind": "hello world.said"})
    # A fine first segment, but the topic it names would pass Kafka's 249 characters.
    long = shared_worker.api.start(workflow, {"kind": f"{'a' * 245}.said"})
    good = shared_worker.api.start(workflow, {"kind": f"{unique()}.said"})
    views = shared_worker.wait_until_finished([bad, long, good])
    assert views[long]["status"] == "failed" and views[long]["error"]["type"] == "Unsendable"
    assert "longer than Kafka allows" in views[long]["error"]["message"]
    assert views[bad]["status"] == "failed", views[bad]
    assert views[bad]["error"]["type"] == "ExpressionError"
    [tell] = [n for n in views[bad]["nodes"] if n["node_id"] == "tell"]
    assert "'hello world'" in tell["error"]["message"] and "Kafka topic" in tell["error"]["message"]
    assert views[good]["status"] == "completed"


def test_department_scope_and_removal_change_subscriptions_without_a_restart(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = f"{kind}-support"
    definition = json.loads(on_event(workflow, [f"{kind}.opened"]))
    definition["department"] = "support"
    assert shared_worker.api.deploy(json.dumps(definition)).status == 201

    def opened(event_id: str, department: str | None) -> CloudEvent:
        extensions = {"department": department} if department else {}
        return CloudEvent(id=event_id, source="/t", type=f"{kind}.opened", extensions=extensions)

    send(broker, opened("sales-1", "sales"))
    send(broker, opened("none-1", None))
    send(broker, opened("support-1", "support"))
    assert [e["event"]["id"] for e in completed(shared_worker, workflow, 1)] == ["support-1"]

    assert shared_worker.api.request("DELETE", f"/workflows/{workflow}").status == 200
    assert shared_worker.api.get(f"/workflows/{workflow}").status == 404
    send(broker, opened("support-2", "support"))
    time.sleep(1.5)
    assert len(executions_of(shared_worker, workflow)) == 1
    redeployed = shared_worker.api.deploy(json.dumps(definition))
    assert redeployed.body["version"] == 2
    send(broker, opened("support-3", "support"))
    ids = [e["event"]["id"] for e in completed(shared_worker, workflow, 2)]
    assert sorted(ids) == ["support-1", "support-3"]


def test_lifecycle_records_are_cloud_events_in_binary_mode(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    workflow = f"{unique()}-observed"
    plain = {
        "id": workflow,
        "nodes": [{"id": "done", "type": "end", "params": {"output": {"ok": True}}}],
        "edges": [],
    }
    assert shared_worker.api.deploy(json.dumps(plain)).status == 201
    execution = shared_worker.api.start(workflow, {})
    shared_worker.wait_until_finished([execution])
    consumer = Consumer(
        broker.confluent(
            {
                "group.id": f"analytics-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 5,
                # Tansu answers a group join after about the rebalance timeout: keep it short.
                "max.poll.interval.ms": 3000,
                "session.timeout.ms": 3000,
                "heartbeat.interval.ms": 1000,
            }
        )
    )
    consumer.subscribe([f"{shared_worker.prefix}.lifecycle"])
    try:
        seen: dict[str, CloudEvent] = {}

        def completion() -> CloudEvent | None:
            for message in consumer.consume(500, 0.5):
                if message.error() or message.key() != execution.encode():
                    continue
                event = from_kafka(message.headers(), message.value())
                seen[event.type] = event
            return seen.get("braidflow.workflow.completed")

        event = until(completion, "the workflow.completed CloudEvent")
    finally:
        consumer.close()
    # Node events name their node's type, so readers can filter without decoding.
    assert seen["braidflow.node.completed"].extensions == {"nodetype": "end"}
    assert event.extensions == {}
    assert event.subject == execution
    assert event.id == f"{execution}/workflow.completed"
    assert event.datacontenttype == "application/avro"
    assert decode_event(event.data).workflow_id == workflow
