"""What does not fit in a Kafka record fails a node or an execution, with the reason; the
worker and the partition carry on."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from suite_broker import SuiteBroker
from topic_records import TopicReader
from workers import WorkerProcess

from braidflow.schemas.dead_letters import DeadLetter, decode_dead_letter


def chain(workflow_id: str, then_echo: bool) -> str:
    nodes: list[dict[str, Any]] = [
        {"id": "a", "type": "task", "params": {"handler": "test.bulky", "input": "${input}"}},
    ]
    edges = []
    last = "a"
    if then_echo:
        echo = {"handler": "test.echo", "input": "${nodes.a.output}"}
        nodes.append({"id": "b", "type": "task", "params": echo})
        edges.append({"from": "a", "to": "b"})
        last = "b"
    nodes.append({"id": "done", "type": "end"})
    edges.append({"from": last, "to": "done"})
    return json.dumps({"id": workflow_id, "nodes": nodes, "edges": edges})


def run(worker: WorkerProcess, text: str, size: int) -> dict[str, Any]:
    workflow_id = json.loads(text)["id"]
    assert worker.api.deploy(text).status in (200, 201)
    execution_id = worker.api.start(workflow_id, {"bytes": size})
    return worker.wait_until_finished([execution_id], 60)[execution_id]


def dead_letters_of(
    broker: SuiteBroker, worker: WorkerProcess, execution_id: str
) -> list[DeadLetter]:
    """The records of an execution the worker sent to the dead-letter topic."""
    with TopicReader(broker, f"{worker.prefix}.dead-letters") as reader:

        def letters() -> list[DeadLetter]:
            found = (decode_dead_letter(r.value) for r in reader.records if r.value)
            return [
                d for d in found if isinstance(d, DeadLetter) and d.key == execution_id.encode()
            ]

        reader.until(lambda _: letters(), 30)
        return letters()


def node(view: dict[str, Any], node_id: str) -> dict[str, Any]:
    [found] = [n for n in view["nodes"] if n["node_id"] == node_id]
    return found


def test_an_output_too_large_for_a_record_fails_its_node(shared_worker: WorkerProcess) -> None:
    text = chain(f"big-out-{uuid.uuid4().hex[:8]}", then_echo=False)
    view = run(shared_worker, text, 1_200_000)
    assert view["status"] == "failed", view
    assert node(view, "a")["error"]["type"] == "OutputTooLarge"
    assert "1,2" in node(view, "a")["error"]["message"]
    assert run(shared_worker, text, 10)["status"] == "completed"


def test_a_large_output_is_kept_beside_the_state(shared_worker: WorkerProcess) -> None:
    # The state row names it; the row and the node's lifecycle event each hold it once.
    text = chain(f"big-kept-{uuid.uuid4().hex[:8]}", then_echo=False)
    view = run(shared_worker, text, 600_000)
    assert view["status"] == "completed", view
    assert len(node(view, "a")["output"]["blob"]) == 600_000


def test_a_state_too_large_for_a_record_fails_the_node_that_made_it(
    shared_worker: WorkerProcess,
) -> None:
    # The output fits a record, but what the step sends does not fit the state row that
    # keeps it until acknowledged: the node's lifecycle event and the next node's input.
    text = chain(f"big-state-{uuid.uuid4().hex[:8]}", then_echo=True)
    view = run(shared_worker, text, 600_000)
    assert view["status"] == "failed", view
    error = node(view, "a")["error"]
    assert error["type"] == "StateTooLarge", error
    assert "keep large data outside the workflow" in error["message"]
    assert run(shared_worker, text, 10)["status"] == "completed"
    assert shared_worker.alive


def test_a_decision_too_large_fails_the_execution_and_dead_letters_its_record(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    # Not a task's output: there is no attempt to fail, so the execution fails.
    workflow_id = f"big-decision-{uuid.uuid4().hex[:8]}"
    text = json.dumps(
        {
            "id": workflow_id,
            "nodes": [
                {"id": "ask", "type": "approval", "params": {"message": "ok?"}},
                {
                    "id": "echo",
                    "type": "task",
                    "params": {"handler": "test.echo", "input": "${nodes.ask.output}"},
                },
                {"id": "done", "type": "end"},
            ],
            "edges": [{"from": "ask", "to": "echo"}, {"from": "echo", "to": "done"}],
        }
    )
    assert shared_worker.api.deploy(text).status == 201
    execution_id = shared_worker.api.start(workflow_id, {})
    path = f"/executions/{execution_id}/approvals/ask"
    decision = {"choice": "approve", "data": {"blob": "x" * 600_000}}

    deadline = time.monotonic() + 30
    # Until the execution is stored (404), then until the approval begins.
    while (reply := shared_worker.api.post_json(path, decision)).status == 404 or (
        "not reached yet" in str(reply.body)
    ):
        assert time.monotonic() < deadline, reply
        time.sleep(0.1)
    assert reply.status == 409 and "failed: StateTooLarge" in reply.body["error"], reply
    view = shared_worker.wait_until_finished([execution_id], 60)[execution_id]
    assert view["status"] == "failed", view
    assert view["error"]["type"] == "StateTooLarge"
    assert node(view, "ask")["status"] == "cancelled"
    [letter] = dead_letters_of(broker, shared_worker, execution_id)
    assert "the execution's state would be" in letter.reason
    assert "ApprovalDecided" in letter.reason


def test_a_start_whose_first_step_could_not_be_stored_is_refused_up_front(
    shared_worker: WorkerProcess,
) -> None:
    # The input fits a request and a start record, but the first step's row would hold it
    # twice (the task's input, and workflow.started): accepted, it could only fail.
    text = chain(f"big-start-{uuid.uuid4().hex[:8]}", then_echo=False)
    assert shared_worker.api.deploy(text).status == 201
    big = {"bytes": 10, "padding": "x" * 700_000}
    path = f"/workflows/{json.loads(text)['id']}/executions"
    reply = shared_worker.api.post_json(path, {"input": big})
    assert reply.status == 413, reply
    assert "input: the execution's state would be" in reply.body["error"]
    assert "StartExecution" in reply.body["error"]
