"""Tenants against a real worker: two tenants deploy workflows of the same id, and an event
of one never starts or resumes anything of the other, through any path: the API, a
webhook, a raw Kafka producer on the other tenant's topic, a publish node, lifecycle
events, sub-workflows, wait_event resumes; approvals and dead letters of one tenant are not
found by the other (404, as if they did not exist).

Negative checks use a barrier rather than a wait: after the event that must not reach
tenant B, an event of B's own on the same path is sent, and once B has run that one it
must have run only that one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer
from suite_broker import SuiteBroker
from topic_records import TopicReader
from waiting import until
from workers import WorkerApi, WorkerProcess, make_key

from braidflow.access import Role
from braidflow.schemas.cloudevents import new_event, to_structured, topic_for

EVENT_WAIT_S = 60.0


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


class Tenant:
    """An owner of one tenant, calling the shared worker."""

    def __init__(self, worker: WorkerProcess, name: str) -> None:
        self.name = name
        key = make_key(worker.broker, worker.prefix, Role.OWNER, f"{name}-owner", tenant=name)
        self.api: WorkerApi = worker.api.with_key(key)

    def deploy(self, text: str) -> None:
        reply = self.api.deploy(text)
        assert reply.status == 201, reply

    def executions(self, workflow_id: str) -> list[dict[str, Any]]:
        reply = self.api.get(f"/workflows/{workflow_id}/executions")
        assert reply.status == 200, reply
        return list(reply.body["executions"])

    def finished(self, workflow_id: str, count: int) -> list[dict[str, Any]]:
        """The views of `count` completed executions of `workflow_id`, waiting for them."""

        def enough() -> list[dict[str, Any]] | None:
            done = [e for e in self.executions(workflow_id) if e["status"] == "completed"]
            return done if len(done) >= count else None

        summaries = until(
            enough, f"{count} completed {workflow_id} of {self.name}", timeout_s=EVENT_WAIT_S
        )
        return [self.view(s["execution_id"]) for s in summaries]

    def view(self, execution_id: str) -> dict[str, Any]:
        reply = self.api.execution(execution_id)
        assert reply.status == 200, reply
        return dict(reply.body)

    def ended(self, execution_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            reply = self.api.execution(execution_id)
            ok = reply.status == 200 and reply.body["status"] in ("completed", "failed")
            return dict(reply.body) if ok else None

        return until(done, f"execution {execution_id} of {self.name} to end", EVENT_WAIT_S)

    def publish(self, event_type: str, data: Any) -> dict[str, Any]:
        event = new_event(event_type, data, source=f"/tests/{self.name}")
        _, value = to_structured(event)
        reply = self.api.request("POST", "/events", value, "application/cloudevents+json")
        assert reply.status == 202, reply
        return dict(reply.body)


@pytest.fixture
def tenants(shared_worker: WorkerProcess) -> tuple[Tenant, Tenant]:
    """Two tenants of their own (topics are the broker's: names no other test uses)."""
    return Tenant(shared_worker, unique("ta")), Tenant(shared_worker, unique("tb"))


def on_event(workflow_id: str, types: list[str], output: str = "${event.data}") -> str:
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [{"event": {"types": types}}],
            "nodes": [{"id": "done", "type": "end", "params": {"output": {"got": output}}}],
            "edges": [],
        }
    )


def produce(broker: SuiteBroker, topic: str, event_type: str, data: Any, **extensions: Any) -> None:
    """A raw producer's event, on `topic` whatever its type says."""
    event = new_event(event_type, data, source="/tests/raw", extensions=extensions)
    headers, value = to_structured(event)
    producer = Producer(broker.confluent({}))
    producer.produce(topic, value, event.id.encode(), headers=headers)
    assert producer.flush(10) == 0


def test_two_tenants_deploy_one_id_and_neither_finds_the_others_workflow_or_executions(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    workflow = unique("onboarding")
    for tenant in tenants:
        text = f"id: {workflow}\nnodes:\n  - {{id: done, type: end, params: {{output: {{who: {tenant.name}}}}}}}\nedges: []\n"
        reply = tenant.api.deploy(text)
        # Each tenant's first version: the other's deploy is no version of it.
        assert (reply.status, reply.body["version"]) == (201, 1), reply
    started = a.api.start(workflow, {})
    assert a.ended(started)["output"] == {"who": a.name}
    assert b.api.execution(started).status == 404
    assert b.api.post_json(f"/executions/{started}/cancel", {}).status == 404
    # The listing is the history's read model, which follows the lifecycle topic: it may
    # lag the execution's own row, read above, by a moment.
    listed = until(
        lambda: [e["execution_id"] for e in a.executions(workflow)], "a's listing", EVENT_WAIT_S
    )
    assert listed == [started]
    assert b.executions(workflow) == []
    shown = b.api.get(f"/workflows/{workflow}")
    assert shown.status == 200 and a.name not in shown.body["definition"], shown
    listed = {w["id"] for w in b.api.get("/workflows").body["workflows"]}
    assert workflow in listed
    only_a = unique("only-a")
    a.deploy(f"id: {only_a}\nnodes:\n  - {{id: done, type: end}}\nedges: []\n")
    assert b.api.get(f"/workflows/{only_a}").status == 404
    assert b.api.post_json(f"/workflows/{only_a}/executions", {"input": {}}).status == 404
    assert only_a not in {w["id"] for w in b.api.get("/workflows").body["workflows"]}


def test_an_event_published_through_the_api_starts_only_its_tenants_workflow(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    segment, workflow = unique("api"), unique("on-api")
    for tenant in tenants:
        tenant.deploy(on_event(workflow, [f"{segment}.created"]))
    answer = a.publish(f"{segment}.created", {"n": "a"})
    assert answer["topic"] == f"tenants.{a.name}.events.{segment}"
    assert [v["output"] for v in a.finished(workflow, 1)] == [{"got": {"n": "a"}}]
    forged = new_event(f"{segment}.created", {}, source="/tests", extensions={"tenant": b.name})
    _, value = to_structured(forged)
    refused = a.api.request("POST", "/events", value, "application/cloudevents+json")
    assert (refused.status, refused.body.get("field")) == (400, "tenant"), refused
    b.publish(f"{segment}.created", {"n": "b"})
    assert [v["output"] for v in b.finished(workflow, 1)] == [{"got": {"n": "b"}}]
    assert len(a.executions(workflow)) == len(b.executions(workflow)) == 1


def test_a_webhook_of_one_tenant_starts_only_that_tenants_workflows(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    hook, workflow = unique("hook"), unique("hooked")
    for tenant in tenants:
        tenant.deploy(
            f"id: {workflow}\ntriggers:\n  - webhook: {{name: {hook}}}\n"
            "nodes:\n  - {id: done, type: end}\nedges: []\n"
        )
    anonymous = a.api.with_key(None)
    called = anonymous.post_json(f"/tenants/{a.name}/hooks/{hook}", {"n": 1})
    assert called.status == 202, called
    [started] = called.body["executions"]
    assert a.ended(started["execution_id"])["status"] == "completed"
    assert b.api.execution(started["execution_id"]).status == 404
    assert b.executions(workflow) == []
    # The default tenant has no such hook, and has one spelling of its hooks.
    assert anonymous.post_json(f"/hooks/{hook}", {}).status == 404
    assert anonymous.post_json(f"/tenants/default/hooks/{hook}", {}).status == 404


def test_a_raw_event_on_one_tenants_topic_starts_only_that_tenants_workflow(
    shared_worker: WorkerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    broker = shared_worker.broker
    segment, workflow = unique("raw"), unique("on-raw")
    for tenant in tenants:
        tenant.deploy(on_event(workflow, [f"{segment}.created"]))
    # Whatever the event claims, its topic says whose it is.
    produce(broker, f"tenants.{a.name}.events.{segment}", f"{segment}.created", {"n": "a"})
    assert [v["output"] for v in a.finished(workflow, 1)] == [{"got": {"n": "a"}}]
    # A tenant extension that disagrees with the topic is a dead letter of the topic's tenant.
    produce(
        broker,
        f"tenants.{a.name}.events.{segment}",
        f"{segment}.created",
        {"n": "forged"},
        tenant=b.name,
    )
    letter = until(
        lambda: [
            d
            for d in a.api.get("/dead-letters?kind=record").body["dead_letters"]
            if d["topic"] == f"tenants.{a.name}.events.{segment}"
        ],
        "the forged event's dead letter",
        EVENT_WAIT_S,
    )
    assert "tenant extension" in letter[0]["reason"], letter
    produce(broker, f"tenants.{b.name}.events.{segment}", f"{segment}.created", {"n": "b"})
    assert [v["output"] for v in b.finished(workflow, 1)] == [{"got": {"n": "b"}}]
    assert len(a.executions(workflow)) == len(b.executions(workflow)) == 1


def test_the_default_tenant_has_one_spelling_of_its_topics(
    shared_worker: WorkerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    default = shared_worker.api
    segment, workflow = unique("dflt"), unique("on-dflt")
    assert default.deploy(on_event(workflow, [f"{segment}.created"])).status == 201
    produce(shared_worker.broker, f"tenants.default.events.{segment}", f"{segment}.created", {})
    letter = until(
        lambda: [
            d
            for d in default.get("/dead-letters?kind=record").body["dead_letters"]
            if d["topic"] == f"tenants.default.events.{segment}"
        ],
        "the dead letter of an event on tenants.default.*",
        EVENT_WAIT_S,
    )
    assert "never under tenants.default." in letter[0]["reason"], letter
    produce(shared_worker.broker, topic_for(f"{segment}.created"), f"{segment}.created", {"n": 1})
    summaries = until(
        lambda: default.get(f"/workflows/{workflow}/executions?status=completed").body[
            "executions"
        ],
        "the default tenant's execution",
        EVENT_WAIT_S,
    )
    assert len(summaries) == 1
    assert len(default.get(f"/workflows/{workflow}/executions").body["executions"]) == 1


def test_a_publish_node_publishes_on_its_own_tenants_topic_only(
    shared_worker: WorkerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    segment, publisher, listener = unique("pub"), unique("publisher"), unique("listener")
    a.deploy(
        f"id: {publisher}\nnodes:\n"
        f"  - {{id: tell, type: publish, params: {{type: {segment}.done, data: {{n: a}}}}}}\n"
        "  - {id: done, type: end}\nedges:\n  - {from: tell, to: done}\n"
    )
    for tenant in tenants:
        tenant.deploy(on_event(listener, [f"{segment}.done"]))
    a.ended(a.api.start(publisher, {}))
    assert [v["output"] for v in a.finished(listener, 1)] == [{"got": {"n": "a"}}]
    with TopicReader(shared_worker.broker, f"tenants.{a.name}.events.{segment}") as reader:
        [record] = reader.read_to_end()
    assert json.loads(record.value)["type"] == f"{segment}.done"
    b.publish(f"{segment}.done", {"n": "b"})
    assert [v["output"] for v in b.finished(listener, 1)] == [{"got": {"n": "b"}}]
    assert len(b.executions(listener)) == 1


def test_lifecycle_events_trigger_only_the_same_tenants_workflows(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    source, follower = unique("source"), unique("follower")
    for tenant in tenants:
        tenant.deploy(f"id: {source}\nnodes:\n  - {{id: done, type: end}}\nedges: []\n")
        tenant.deploy(
            json.dumps(
                {
                    "id": follower,
                    "triggers": [
                        {
                            "event": {
                                "types": ["braidflow.workflow.completed"],
                                "when": f"event.data.workflow_id == '{source}'",
                            }
                        }
                    ],
                    "nodes": [
                        {
                            "id": "done",
                            "type": "end",
                            "params": {"output": {"after": "${event.data.execution_id}"}},
                        }
                    ],
                    "edges": [],
                }
            )
        )
    first = a.api.start(source, {})
    assert [v["output"] for v in a.finished(follower, 1)] == [{"after": first}]
    second = b.api.start(source, {})
    assert [v["output"] for v in b.finished(follower, 1)] == [{"after": second}]
    assert len(a.executions(follower)) == len(b.executions(follower)) == 1


def test_a_subworkflow_is_its_own_tenants(
    shared_worker: WorkerProcess, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    default = shared_worker.api
    child, parent, stranger = unique("child"), unique("parent"), unique("stranger")
    for tenant in tenants:
        tenant.deploy(
            f"id: {child}\nnodes:\n"
            f"  - {{id: done, type: end, params: {{output: {{who: {tenant.name}}}}}}}\nedges: []\n"
        )
    b.deploy(f"id: {stranger}\nnodes:\n  - {{id: done, type: end}}\nedges: []\n")
    a.deploy(
        f"id: {parent}\nnodes:\n"
        f"  - {{id: call, type: subworkflow, params: {{workflow: {child}}}}}\n"
        "  - {id: done, type: end, params: {output: {child: '${nodes.call.output}'}}}\n"
        "edges:\n  - {from: call, to: done}\n"
    )
    ended = a.ended(a.api.start(parent, {}))
    assert ended["output"] == {"child": {"who": a.name}}, ended
    assert b.executions(child) == []
    calls_stranger = unique("calls-stranger")
    a.deploy(
        f"id: {calls_stranger}\nnodes:\n"
        f"  - {{id: call, type: subworkflow, params: {{workflow: {stranger}}}}}\n"
        "  - {id: done, type: end}\nedges:\n  - {from: call, to: done}\n"
    )
    failed = a.ended(a.api.start(calls_stranger, {}))
    assert failed["status"] == "failed", failed
    assert "UnknownWorkflow" in json.dumps(failed["error"]), failed
    assert b.executions(stranger) == []

    def refused_start(api: WorkerApi) -> list[dict[str, Any]]:
        letters = api.get("/dead-letters?kind=record").body["dead_letters"]
        return [d for d in letters if stranger in d["reason"]]

    # The refused child start is a dead letter of its own tenant, not the default's.
    until(lambda: refused_start(a.api), "the refused child start's dead letter", EVENT_WAIT_S)
    assert refused_start(default) == []


def test_a_wait_is_resumed_only_by_its_tenants_events(tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    segment, waiter = unique("wait"), unique("waiter")
    for tenant in tenants:
        tenant.deploy(
            f"id: {waiter}\nnodes:\n"
            f"  - {{id: wait, type: wait_event, params: {{type: {segment}.resolved,"
            ' correlate: "event.data.ticket == input.ticket"}, timeout: 1h}\n'
            '  - {id: done, type: end, params: {output: {by: "${nodes.wait.output.data.by}"}}}\n'
            "edges:\n  - {from: wait, to: done}\n"
        )
    waiting: dict[str, str] = {}
    for tenant in tenants:
        waiting[tenant.name] = tenant.api.start(waiter, {"ticket": 7})
        until(
            waiting_at(tenant, waiting[tenant.name], "wait"),
            f"{tenant.name}'s execution to wait",
            EVENT_WAIT_S,
        )
    b.publish(f"{segment}.resolved", {"ticket": 7, "by": b.name})
    assert b.ended(waiting[b.name])["output"] == {"by": b.name}
    assert a.view(waiting[a.name])["status"] == "running"
    a.publish(f"{segment}.resolved", {"ticket": 7, "by": a.name})
    assert a.ended(waiting[a.name])["output"] == {"by": a.name}


def waiting_at(tenant: Tenant, execution_id: str, node_id: str) -> Callable[[], bool]:
    def waits() -> bool:
        reply = tenant.api.execution(execution_id)
        return reply.status == 200 and any(
            n["node_id"] == node_id and n["status"] == "waiting" for n in reply.body["nodes"]
        )

    return waits


def test_approvals_of_one_tenant_are_not_found_by_another(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    workflow = unique("approve")
    a.deploy(
        f"id: {workflow}\nnodes:\n"
        '  - {id: ask, type: approval, params: {message: "ok?"}, timeout: 1d}\n'
        "  - {id: done, type: end}\nedges:\n  - {from: ask, to: done}\n"
    )
    started = a.api.start(workflow, {})
    until(
        lambda: any(
            p["execution_id"] == started for p in a.api.get("/approvals").body["approvals"]
        ),
        "the pending approval",
        EVENT_WAIT_S,
    )
    assert started not in {p["execution_id"] for p in b.api.get("/approvals").body["approvals"]}
    decided = b.api.post_json(f"/executions/{started}/approvals/ask", {"choice": "approve"})
    assert decided.status == 404, decided
    assert a.view(started)["status"] == "running"


def test_dead_letters_of_one_tenant_are_not_found_by_another(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    workflow = unique("charge")
    a.deploy(
        f"id: {workflow}\nnodes:\n"
        "  - {id: charge, type: task, params: {handler: test.boom}}\n"
        "  - {id: done, type: end}\nedges:\n  - {from: charge, to: done}\n"
    )
    failed = a.ended(a.api.start(workflow, {}))
    assert failed["status"] == "failed", failed
    letters = until(
        lambda: [
            d
            for d in a.api.get("/dead-letters?kind=node").body["dead_letters"]
            if d["execution_id"] == failed["execution_id"]
        ],
        "the node's dead letter",
        EVENT_WAIT_S,
    )
    letter = letters[0]["id"]
    assert letter not in {d["id"] for d in b.api.get("/dead-letters").body["dead_letters"]}
    assert b.api.post_json(f"/dead-letters/{letter}/redrive", {}).status == 404
    redriven = a.api.post_json(f"/dead-letters/{letter}/redrive", {})
    assert redriven.status == 202, redriven


def test_departments_are_named_within_a_tenant(tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    name = unique("support")
    for tenant in tenants:
        text = f"kind: Department\nname: {name}\ncontext: {{who: {tenant.name}}}\n"
        reply = tenant.api.deploy(text)
        assert (reply.status, reply.body) == (201, {"department": name, "version": 1}), reply
    for tenant in tenants:
        shown = tenant.api.get(f"/departments/{name}")
        assert shown.status == 200 and shown.body["context"] == {"who": tenant.name}, shown
    only_a = unique("finance")
    assert a.api.deploy(f"kind: Department\nname: {only_a}\n").status == 201
    assert b.api.get(f"/departments/{only_a}").status == 404
    assert only_a not in {d["name"] for d in b.api.get("/departments").body["departments"]}
