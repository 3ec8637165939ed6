"""Issue 14 on the real broker: what started an execution, per-workflow execution metrics
counted once when transitions come again, and a decision on a paused execution."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from click.testing import CliRunner
from topic_records import TopicReader, produce
from waiting import until
from workers import SUITE_OWNER, WorkerProcess

from braidflow.cli import main
from braidflow.schemas.cloudevents import CloudEvent, to_structured

WAIT_S = 30.0


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def cli(worker: WorkerProcess, *args: str) -> Any:
    """The real `braidflow` command against the worker's API."""
    runner = CliRunner(env={"USER": "ana", "BRAIDFLOW_API_KEY": worker.api.key})
    return runner.invoke(main, [*args, "--api", worker.api.base_url])


def triggered(workflow_id: str, event_type: str, hook: str) -> str:
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [{"event": {"types": [event_type]}}, {"webhook": {"name": hook}}],
            "nodes": [{"id": "done", "type": "end", "params": {"output": {"ok": True}}}],
            "edges": [],
        }
    )


def only_execution(worker: WorkerProcess, workflow_id: str) -> str:
    def found() -> str | None:
        reply = worker.api.get(f"/workflows/{workflow_id}/executions")
        executions = reply.body["executions"] if reply.status == 200 else []
        return executions[0]["execution_id"] if executions else None

    return until(found, f"an execution of {workflow_id}")


def test_the_view_and_status_name_the_event_webhook_or_api_call_that_started_it(
    shared_worker: WorkerProcess,
) -> None:
    kind = unique("started")
    workflow, hook = f"{kind}-flow", f"{kind}-hook"
    assert shared_worker.api.deploy(triggered(workflow, f"{kind}.opened", hook)).status == 201
    event = CloudEvent(
        id="evt-14",
        source="/helpdesk",
        type=f"{kind}.opened",
        subject="T-14",
        time="2026-12-05T18:00:00Z",
        data={"ticket": 14},
    )
    _, body = to_structured(event)
    published = shared_worker.api.request("POST", "/events", body, "application/json")
    assert published.status == 202, published
    by_event = only_execution(shared_worker, workflow)
    view = shared_worker.wait_until_finished([by_event])[by_event]
    assert view["started_by"] == {
        "kind": "event",
        "id": "evt-14",
        "type": f"{kind}.opened",
        "source": "/helpdesk",
        "subject": "T-14",
        "time": "2026-12-05T18:00:00Z",
    }
    status = cli(shared_worker, "status", by_event)
    assert status.exit_code == 0, status.output
    assert (
        f"started by event {kind}.opened id evt-14 from /helpdesk subject T-14"
        " at 2026-12-05T18:00:00Z"
    ) in status.stdout.splitlines()

    called = shared_worker.api.request(
        "POST", f"/hooks/{hook}", b'{"deploy": 1}', "application/json", {"Idempotency-Key": "h-1"}
    )
    assert called.status == 202, called
    [started] = called.body["executions"]
    by_hook = shared_worker.wait_until_finished([started["execution_id"]])
    hook_view = by_hook[started["execution_id"]]["started_by"]
    assert (hook_view["kind"], hook_view["id"]) == ("webhook", "h-1")
    assert (hook_view["type"], hook_view["source"]) == (
        f"braidflow.webhook.{hook}",
        f"/hooks/{hook}",
    )

    by_api = shared_worker.api.start(workflow, {})
    assert shared_worker.wait_until_finished([by_api])[by_api]["started_by"] == {"kind": "api"}
    assert "started by api" in cli(shared_worker, "status", by_api).stdout.splitlines()


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    text = worker.api.get("/metrics").body
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        found = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if found and ",".join(sorted(found.group(1).split(","))) == wanted:
            return float(found.group(2))
    return 0.0


FAILING_AT_B = """
id: {id}
input: {{type: object, properties: {{fail: {{type: boolean}}}}}}
nodes:
  - {{id: b, type: decision}}
  - {{id: ok, type: end, params: {{output: {{done: true}}}}}}
  - {{id: bad, type: task, params: {{handler: test.boom}}}}
  - {{id: never, type: end}}
edges:
  - {{from: b, to: bad, when: "input.fail"}}
  - {{from: b, to: ok, default: true}}
  - {{from: bad, to: never}}
"""


def test_per_workflow_metrics_count_each_execution_once_when_its_transitions_come_again(
    shared_worker: WorkerProcess,
) -> None:
    workflow = unique("metered")
    reply = shared_worker.api.deploy(FAILING_AT_B.format(id=workflow))
    assert reply.status == 201, reply
    ids = [shared_worker.api.start(workflow, {"fail": f}) for f in (False, False, True)]
    views = shared_worker.wait_until_finished(ids)
    assert [views[i]["status"] for i in ids] == ["completed", "completed", "failed"]

    def counts() -> tuple[float, ...]:
        return (
            metric(shared_worker, "braidflow_executions_started_total", workflow=workflow),
            metric(
                shared_worker,
                "braidflow_executions_ended_total",
                workflow=workflow,
                status="completed",
            ),
            metric(
                shared_worker,
                "braidflow_executions_ended_total",
                workflow=workflow,
                status="failed",
            ),
            metric(
                shared_worker,
                "braidflow_execution_duration_seconds_count",
                workflow=workflow,
                status="completed",
            ),
        )

    assert until(lambda: counts() == (3, 2, 1, 2), f"the metrics of {workflow}: {counts()}")

    # Every transition of these executions delivered again, as after a crash before a commit.
    topic = f"{shared_worker.prefix}.transitions"
    with TopicReader(shared_worker.broker, topic) as reader:
        again = [r for r in reader.read_to_end() if r.key and r.key.decode() in ids]
    assert len(again) >= 3 * 2
    ignored_before = ignored(shared_worker)
    for record in again:
        assert record.value is not None
        produce(shared_worker.broker, topic, record.key, record.value, record.partition)
    until(
        lambda: ignored(shared_worker) >= ignored_before + len(again),
        "the transitions delivered again to be ignored",
    )
    assert counts() == (3, 2, 1, 2)


def ignored(worker: WorkerProcess) -> float:
    """Transitions the engine ignored, of every kind."""
    text = worker.api.get("/metrics").body
    pattern = r'^braidflow_transitions_total\{[^}]*outcome="ignored"[^}]*\} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.M))


APPROVAL = """
id: {id}
nodes:
  - {{id: ask, type: approval, params: {{message: "ship it?", choices: [approve, reject]}}}}
  - {{id: route, type: decision}}
  - {{id: shipped, type: end, params: {{output: {{shipped: true, by: "${{nodes.ask.output.by}}"}}}}}}
  - {{id: held, type: end, params: {{output: {{shipped: false}}}}}}
edges:
  - {{from: ask, to: route}}
  - {{from: route, to: shipped, when: "nodes.ask.output.choice == 'approve'"}}
  - {{from: route, to: held, default: true}}
"""


def test_a_decision_on_a_paused_execution_is_accepted_and_applies_on_resume(
    shared_worker: WorkerProcess,
) -> None:
    workflow = unique("pausedapproval")
    assert shared_worker.api.deploy(APPROVAL.format(id=workflow)).status == 201
    execution = shared_worker.api.start(workflow, {})

    def waiting() -> bool:
        view = shared_worker.api.execution(execution)
        return view.status == 200 and any(
            n["node_id"] == "ask" and n["status"] == "waiting" for n in view.body["nodes"]
        )

    until(waiting, "the approval to wait")
    paused = cli(shared_worker, "pause", execution, "--reason", "stock audit")
    assert paused.exit_code == 0, paused.output
    until(lambda: shared_worker.api.execution(execution).body["paused"], "the pause")

    approved = cli(shared_worker, "approve", execution, "ask", "--choice", "approve")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.splitlines() == [
        f"approved: ask of {execution}: approve by {SUITE_OWNER}",
        "the execution is paused: the decision applies when it is resumed",
    ]
    # Answered once the execution holds the decision: its status says so at once.
    status = cli(shared_worker, "status", execution)
    assert (
        "status     paused (1 transition held until resumed: ApprovalDecided ask)"
        in status.stdout.splitlines()
    )
    # A second decision would be dropped on resume: it is refused now.
    second = shared_worker.api.post_json(
        f"/executions/{execution}/approvals/ask", {"choice": "reject"}
    )
    assert second.status == 409, second
    assert "already has a decision waiting for the resume" in second.body["error"]
    assert shared_worker.api.execution(execution).body["status"] == "running"

    resumed = cli(shared_worker, "resume", execution, "--reason", "audit done")
    assert resumed.exit_code == 0, resumed.output
    done = shared_worker.wait_until_finished([execution])[execution]
    # Who acted is the key's name each time, not the shell's user.
    assert done["output"] == {"shipped": True, "by": SUITE_OWNER}
    assert [(c["action"], c["by"], c["reason"]) for c in done["control"]] == [
        ("pause", SUITE_OWNER, "stock audit"),
        ("resume", SUITE_OWNER, "audit done"),
        ("approval", SUITE_OWNER, None),
    ]


def test_an_end_too_large_to_store_is_counted_as_the_failure_it_became(
    shared_worker: WorkerProcess,
) -> None:
    # The end's step emits workflow.completed; its state cannot be stored, so the
    # execution fails instead, and the metrics count what was applied.
    workflow = unique("bigend")
    definition = {
        "id": workflow,
        "nodes": [
            {"id": "a", "type": "task", "params": {"handler": "test.bulky", "input": "${input}"}},
            {"id": "done", "type": "end", "params": {"output": {"b": "${nodes.a.output.blob}"}}},
        ],
        "edges": [{"from": "a", "to": "done"}],
    }
    assert shared_worker.api.deploy(json.dumps(definition)).status == 201
    execution = shared_worker.api.start(workflow, {"bytes": 600_000})
    view = shared_worker.wait_until_finished([execution], 60)[execution]
    assert view["status"] == "failed", view["error"]

    def ended(status: str) -> float:
        return metric(
            shared_worker, "braidflow_executions_ended_total", workflow=workflow, status=status
        )

    until(lambda: ended("failed") == 1, "the failure to be counted")
    assert ended("completed") == 0


def test_the_view_shows_each_node_runs_input_beside_its_output(
    shared_worker: WorkerProcess,
) -> None:
    """A task's resolved request input as the state keeps it; a transform's (a control node,
    which keeps none) its params rendered as they were when it ran."""
    workflow = unique("inputs")
    text = f"""
id: {workflow}
nodes:
  - {{id: greet, type: task, params: {{handler: test.echo, input: {{greeting: "hi ${{input.name}}"}}}}}}
  - {{id: shape, type: transform, params: {{set: {{said: "${{nodes.greet.output.greeting}}"}}}}}}
  - {{id: done, type: end, params: {{output: {{said: "${{nodes.shape.output.said}}"}}}}}}
edges:
  - {{from: greet, to: shape}}
  - {{from: shape, to: done}}
"""
    assert shared_worker.api.deploy(text).status == 201
    execution = shared_worker.api.start(workflow, {"name": "ana"})
    view = shared_worker.wait_until_finished([execution])[execution]
    assert view["status"] == "completed", view
    inputs = {n["node_id"]: n["input"] for n in view["nodes"]}
    assert inputs["greet"] == {"greeting": "hi ana"}
    assert inputs["shape"] == {"set": {"said": "hi ana"}}
    assert inputs["done"] == {"output": {"said": "hi ana"}}
