"""Results without polling, against a real worker: an execution's lifecycle as Server-Sent
Events (replay, live, the end, `Last-Event-ID`), the workflow's stream, and `?wait=` on a
start and on a read."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from live_streams import SPLIT_MEET_EDGES, read_stream, stream_status
from waiting import until
from workers import WorkerApi, WorkerProcess, make_key

from braidflow.access import Role
from braidflow.cli import main
from braidflow.client_stream import StreamEvent

FAN_OUT = (
    """
id: {id}
nodes:
  - {{id: split, type: parallel}}
  - {{id: left, type: task, params: {{handler: test.slow, input: {{value: 1, seconds: 0.5}}}}}}
  - {{id: right, type: task, params: {{handler: test.echo, input: {{value: 2}}}}}}
  - {{id: meet, type: join, params: {{wait_for: all, merge: object}}}}
  - {{id: done, type: end, params: {{output: {{left: "${{nodes.left.output.value}}"}}}}}}
"""
    + SPLIT_MEET_EDGES
)
WAITS = """
id: {id}
nodes:
  - {{id: ask, type: approval, params: {{message: "ok?"}}, timeout: 1d}}
  - {{id: done, type: end}}
edges:
  - {{from: ask, to: done}}
"""
NODES = ("split", "left", "right", "meet", "done")


def deployed(api: WorkerApi, text: str, name: str) -> str:
    workflow_id = f"{name}-{uuid.uuid4().hex[:8]}"
    reply = api.deploy(text.format(id=workflow_id))
    assert reply.status == 201, reply
    return workflow_id


@pytest.fixture(scope="module")
def fan_out(shared_worker: WorkerProcess) -> str:
    return deployed(shared_worker.api, FAN_OUT, "live-fan")


@pytest.fixture(scope="module")
def waits(shared_worker: WorkerProcess) -> str:
    return deployed(shared_worker.api, WAITS, "live-waits")


def test_a_stream_sees_every_node_event_and_the_end_then_closes(
    shared_worker: WorkerProcess, fan_out: str
) -> None:
    api = shared_worker.api
    execution_id = api.start(fan_out, {})
    read = read_stream(api, f"/executions/{execution_id}/events")
    assert (read.status, read.ended) == (200, True), read
    assert read.content_type.startswith("text/event-stream")
    assert read.types[-1] == "workflow.completed", read.types
    assert "workflow.started" in read.types
    for node in NODES:
        types = [e.type for e in read.events if e.data.get("node_id") == node]
        assert "node.started" in types and "node.completed" in types, (node, read.types)
    for event in read.events:
        assert event.id == event.data["id"] and event.type == event.data["type"], event
        assert event.data["execution_id"] == execution_id
    assert read.events[-1].data["data"] is None or isinstance(read.events[-1].data["data"], dict)
    # Each event once: the ids are unique.
    assert len({e.id for e in read.events}) == len(read.events)


def test_resuming_with_last_event_id_gives_only_the_later_events(
    shared_worker: WorkerProcess, fan_out: str
) -> None:
    api = shared_worker.api
    execution_id = api.start(fan_out, {})
    whole = read_stream(api, f"/executions/{execution_id}/events")
    assert whole.types[-1] == "workflow.completed", whole.types
    middle = len(whole.events) // 2
    resumed = read_stream(
        api, f"/executions/{execution_id}/events", last_event_id=whole.events[middle].id
    )
    assert resumed.ended
    assert [e.id for e in resumed.events] == [e.id for e in whole.events[middle + 1 :]]
    after_end = read_stream(
        api, f"/executions/{execution_id}/events", last_event_id=whole.events[-1].id
    )
    assert (after_end.ended, after_end.events) == (True, [])


def test_another_tenants_execution_stream_is_404_and_without_a_key_401(
    shared_worker: WorkerProcess, fan_out: str
) -> None:
    api = shared_worker.api
    execution_id = api.start(fan_out, {})
    broker, prefix = shared_worker.broker, shared_worker.prefix
    stranger = api.with_key(make_key(broker, prefix, Role.OWNER, "live-stranger", tenant="live-b"))
    until(lambda: stranger.get("/workflows").status == 200, "the worker to know the key")
    path = f"/executions/{execution_id}/events"
    assert stream_status(stranger, path) == 404
    assert stream_status(api.with_key(None), path) == 401
    assert stream_status(api, f"/executions/{uuid.uuid4().hex}/events") == 404
    assert stream_status(stranger, f"/workflows/{fan_out}/events") == 404


def test_a_workflow_stream_carries_the_executions_started_after_it_opened(
    shared_worker: WorkerProcess,
) -> None:
    api = shared_worker.api
    # A workflow of its own: no execution of another test ends on this stream.
    fan_out = deployed(api, FAN_OUT, "live-tail")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        reading = pool.submit(
            read_stream, api, f"/workflows/{fan_out}/events", None, "workflow.completed"
        )
        # The stream is live from when it opens: start once it is surely open.
        until(lambda: reading.running(), "the stream to be read")
        execution_ids: set[str] = set()

        def started_and_seen() -> bool:
            if not reading.done():
                execution_ids.add(api.start(fan_out, {}))
            return reading.done()

        until(started_and_seen, "the workflow's stream to show an end", timeout_s=60)
        read = reading.result()
    ended = [e for e in read.events if e.type == "workflow.completed"]
    assert ended and ended[0].data["execution_id"] in execution_ids, read.types
    assert {e.data["workflow_id"] for e in read.events} == {fan_out}


def follow_until_ours_end(
    api: WorkerApi, path: str, start: Callable[[], str]
) -> tuple[list[StreamEvent], set[str]]:
    """Read the live stream at `path` while starting executions (`start`) until one of
    them ends on it; the events read and the executions started."""
    started: set[str] = set()
    events: list[StreamEvent] = []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:

        def ours_ended() -> bool:
            ended = [e for e in events if e.type == "workflow.completed"]
            return any(e.data["execution_id"] in started for e in ended)

        def read() -> None:
            # The stream is read whole until ours ends: the test hangs up then.
            while not ours_ended():
                events.extend(read_stream(api, path, until_type="workflow.completed").events)

        reading = pool.submit(read)

        def started_and_seen() -> bool:
            if not reading.done():
                started.add(start())
            return reading.done()

        until(started_and_seen, f"one of ours to end on {path}", timeout_s=60)
        reading.result()
    return events, started


def test_a_department_stream_carries_its_workflows_only_and_its_tenants_only(
    shared_worker: WorkerProcess,
) -> None:
    api = shared_worker.api
    name = f"live-dept-{uuid.uuid4().hex[:6]}"
    assert api.deploy(f"kind: Department\nname: {name}\ndescription: live\n").status == 201
    inside = deployed(api, FAN_OUT.replace("nodes:", f"department: {name}\nnodes:", 1), "in")
    outside = deployed(api, FAN_OUT, "out")
    broker, prefix = shared_worker.broker, shared_worker.prefix
    tenant_b = api.with_key(make_key(broker, prefix, Role.OWNER, "live-b-owner", tenant="live-c"))
    until(lambda: tenant_b.get("/workflows").status == 200, "the worker to know the key")
    assert tenant_b.deploy(f"kind: Department\nname: {name}\ndescription: b\n").status == 201
    assert (
        tenant_b.deploy(
            FAN_OUT.replace("nodes:", f"department: {name}\nnodes:", 1).format(id=inside)
        ).status
        == 201
    )

    def start() -> str:
        # Another workflow of the tenant, and tenant B's namesake, run alongside ours.
        api.start(outside, {})
        tenant_b.start(inside, {})
        return api.start(inside, {})

    events, started = follow_until_ours_end(api, f"/departments/{name}/events", start)
    assert {e.data["workflow_id"] for e in events} == {inside}, [e.data for e in events]
    assert {e.data["execution_id"] for e in events} <= started


def test_a_start_with_wait_answers_the_finished_execution(
    shared_worker: WorkerProcess, fan_out: str
) -> None:
    reply = shared_worker.api.post_json(f"/workflows/{fan_out}/executions?wait=30s", {"input": {}})
    assert reply.status == 200, reply
    assert reply.body["status"] == "completed", reply.body
    assert reply.body["output"] == {"left": 1}


def test_a_start_whose_wait_runs_out_is_202(shared_worker: WorkerProcess, waits: str) -> None:
    reply = shared_worker.api.post_json(f"/workflows/{waits}/executions?wait=500ms", {"input": {}})
    assert reply.status == 202, reply
    assert reply.body["status"] == "accepted"


def test_a_read_with_wait_answers_once_the_execution_ends(
    shared_worker: WorkerProcess, fan_out: str, waits: str
) -> None:
    api = shared_worker.api
    execution_id = api.start(fan_out, {})
    reply = api.get(f"/executions/{execution_id}?wait=30s")
    assert reply.status == 200, reply
    assert reply.body["status"] == "completed", reply.body
    waiting = api.start(waits, {})
    ran_out = api.get(f"/executions/{waiting}?wait=300ms")
    assert ran_out.status == 200, ran_out
    assert ran_out.body["status"] in ("accepted", "running"), ran_out.body


@pytest.mark.parametrize("given", ["forever", "61s", "2m"])
def test_a_bad_wait_is_400_naming_wait(
    shared_worker: WorkerProcess, fan_out: str, given: str
) -> None:
    api = shared_worker.api
    execution_id = api.start(fan_out, {})
    read = api.get(f"/executions/{execution_id}?wait={given}")
    assert (read.status, read.body.get("field")) == (400, "wait"), read
    start = api.post_json(f"/workflows/{fan_out}/executions?wait={given}", {"input": {}})
    assert (start.status, start.body.get("field")) == (400, "wait"), start


def cli(worker: WorkerProcess, *args: str) -> Result:
    """The real `braidflow` command against the worker's API."""
    return CliRunner(env={"BRAIDFLOW_API_KEY": worker.api.key}).invoke(
        main, [*args, "--api", worker.api.base_url]
    )


def test_run_wait_follows_the_stream_and_prints_the_result(
    shared_worker: WorkerProcess, fan_out: str
) -> None:
    ran = cli(shared_worker, "run", fan_out, "--wait")
    assert ran.exit_code == 0, ran.output
    lines = ran.stdout.splitlines()
    execution_id = lines[0]
    for node in NODES:
        assert f"  {node}  started" in lines and f"  {node}  completed" in lines, lines
    assert "status: completed" in lines
    assert '  "left": 1' in ran.stdout
    assert shared_worker.api.execution(execution_id).body["status"] == "completed"


def test_run_wait_stops_at_its_timeout_with_exit_2(
    shared_worker: WorkerProcess, waits: str
) -> None:
    ran = cli(shared_worker, "run", waits, "--wait", "--timeout", "1")
    assert ran.exit_code == 2, ran.output
    assert "  ask  started" in ran.stdout
    assert "timed out after 1 s" in ran.stdout


def assert_resumes_after(api: WorkerApi, path: str, read: list[StreamEvent]) -> None:
    """Resuming the stream at `path` after an event in the middle of `read` (a stream read
    live) gives exactly the events that followed it: none before, none twice."""
    middle = len(read) // 2
    resumed = read_stream(api, path, last_event_id=read[middle].id, until_id=read[-1].id)
    assert [e.id for e in resumed.events] == [e.id for e in read[middle + 1 :]], (
        read[middle].id,
        resumed.types,
    )
    # An event the worker does not keep: live from now, and a `stream.cut` says so first.
    execution_id = read[middle].data["execution_id"]
    unknown = read[middle].id.replace(execution_id, uuid.uuid4().hex, 1)
    cut = read_stream(api, path, last_event_id=unknown, until_type="stream.cut")
    assert cut.types == ["stream.cut"], cut.types


def test_a_workflow_stream_resumes_after_last_event_id(shared_worker: WorkerProcess) -> None:
    api = shared_worker.api
    fan_out = deployed(api, FAN_OUT, "live-resume")
    path = f"/workflows/{fan_out}/events"
    events, _ = follow_until_ours_end(api, path, lambda: api.start(fan_out, {}))
    assert_resumes_after(api, path, events)


def test_a_department_stream_resumes_after_last_event_id(shared_worker: WorkerProcess) -> None:
    api = shared_worker.api
    name = f"live-resume-{uuid.uuid4().hex[:6]}"
    assert api.deploy(f"kind: Department\nname: {name}\ndescription: live\n").status == 201
    inside = deployed(api, FAN_OUT.replace("nodes:", f"department: {name}\nnodes:", 1), "in")
    path = f"/departments/{name}/events"
    events, _ = follow_until_ours_end(api, path, lambda: api.start(inside, {}))
    assert_resumes_after(api, path, events)
