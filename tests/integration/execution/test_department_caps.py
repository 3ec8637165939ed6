"""Department caps against a real worker: `settings.max_concurrent_executions` bounds the
executions running at once (counted by a real HTTP server their http nodes call), starts
beyond it wait `queued` and all finish; a queued execution can be cancelled; a child in its
parent's department runs in the parent's slot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from background_loop import BackgroundLoop
from in_flight_server import InFlight, capped, holding_workflow, serve_in_flight
from waiting import until
from workers import WorkerProcess

CAP = 5
STARTS = 50
FINISH_TIMEOUT_S = 180.0


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def server(background_loop: BackgroundLoop) -> Iterator[tuple[InFlight, str]]:
    counts, url, runner = serve_in_flight(background_loop, hold_s=0.3)
    yield counts, url
    background_loop.run(runner.cleanup())


def deploy(worker: WorkerProcess, text: str) -> None:
    reply = worker.api.deploy(text)
    assert reply.status == 201, reply


def test_fifty_starts_under_a_cap_of_five_never_run_more_than_five_and_all_finish(
    shared_worker: WorkerProcess, server: tuple[InFlight, str]
) -> None:
    counts, url = server
    department, workflow = unique("capped"), unique("hold")
    deploy(shared_worker, capped(department, CAP))
    deploy(shared_worker, holding_workflow(workflow, department, url))
    ids = [shared_worker.api.start(workflow, {}) for _ in range(STARTS)]
    # The last ones wait their turn, and read as queued meanwhile.
    assert until(
        lambda: shared_worker.api.execution(ids[-1]).body.get("status") == "queued",
        what="the last start queued",
    )
    finished = shared_worker.wait_until_finished(ids, FINISH_TIMEOUT_S)
    assert {e: v["status"] for e, v in finished.items()} == dict.fromkeys(ids, "completed")
    assert counts.most <= CAP, f"{counts.most} executions held at once"
    assert len(counts.answered) == STARTS


def test_a_queued_execution_is_cancelled_out_of_the_queue_and_never_runs(
    shared_worker: WorkerProcess, background_loop: BackgroundLoop
) -> None:
    counts, url, runner = serve_in_flight(background_loop, hold_s=3.0)
    try:
        department, workflow = unique("capped"), unique("hold")
        deploy(shared_worker, capped(department, 1))
        deploy(shared_worker, holding_workflow(workflow, department, url))
        first, second, third = (shared_worker.api.start(workflow, {}) for _ in range(3))
        until(
            lambda: shared_worker.api.execution(second).body.get("status") == "queued",
            what="the second start queued behind the first",
        )
        cancelled = shared_worker.api.post_json(f"/executions/{second}/cancel", {"reason": "x"})
        assert cancelled.status == 202, cancelled
        views = shared_worker.wait_until_finished([first, second, third], 60)
        statuses = [views[e]["status"] for e in (first, second, third)]
        assert statuses == ["completed", "cancelled", "completed"], views
        assert views[second]["nodes"] == []
        assert len(counts.answered) == 2 and counts.most == 1
    finally:
        background_loop.run(runner.cleanup())


def test_a_child_in_its_parents_department_runs_in_the_parents_slot(
    shared_worker: WorkerProcess,
) -> None:
    department, parent, child = unique("capped"), unique("parent"), unique("child")
    deploy(shared_worker, capped(department, 1))
    deploy(
        shared_worker,
        f"""
id: {child}
department: {department}
nodes:
  - {{id: done, type: end, params: {{output: {{ok: true}}}}}}
edges: []
""",
    )
    deploy(
        shared_worker,
        f"""
id: {parent}
department: {department}
nodes:
  - {{id: call, type: subworkflow, params: {{workflow: {child}}}}}
  - {{id: done, type: end, params: {{output: "${{nodes.call.output}}"}}}}
edges:
  - {{from: call, to: done}}
""",
    )
    # With the child waiting for a slot of its own, each parent would wait for it for ever.
    ids = [shared_worker.api.start(parent, {}) for _ in range(2)]
    views = shared_worker.wait_until_finished(ids, 60)
    assert {v["status"] for v in views.values()} == {"completed"}, views
