"""A worker keeps lifecycle events in memory: after a restart it reads them again, so every
stream replays an execution that ran before, and resumes from `Last-Event-ID`."""

from __future__ import annotations

import uuid
from pathlib import Path

from live_streams import read_stream
from suite_broker import SuiteBroker
from workers import WorkerProcess

DEPARTMENT = "kind: Department\nname: {name}\ndescription: restart\n"
FAN_OUT = """
id: {id}
department: {department}
nodes:
  - {{id: split, type: parallel}}
  - {{id: left, type: task, params: {{handler: test.echo, input: {{value: 1}}}}}}
  - {{id: right, type: task, params: {{handler: test.echo, input: {{value: 2}}}}}}
  - {{id: meet, type: join, params: {{wait_for: all, merge: object}}}}
  - {{id: done, type: end}}
edges:
  - {{from: split, to: left}}
  - {{from: split, to: right}}
  - {{from: left, to: meet}}
  - {{from: right, to: meet}}
  - {{from: meet, to: done}}
"""


def test_a_restarted_worker_replays_an_earlier_execution_and_resumes_every_stream(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(broker, prefix, tmp_path / "data", tmp_path / "worker.log")
    department, workflow_id = f"restart-{uuid.uuid4().hex[:6]}", f"fan-{uuid.uuid4().hex[:6]}"
    with worker:
        api = worker.wait_ready().api
        assert api.deploy(DEPARTMENT.format(name=department)).status == 201
        deployed = api.deploy(FAN_OUT.format(id=workflow_id, department=department))
        assert deployed.status == 201, deployed
        execution_id = api.start(workflow_id, {})
        before = read_stream(api, f"/executions/{execution_id}/events")
        assert before.types[-1] == "workflow.completed", before.types
    # The same data dir: its execution index has read the topic, the feed held in memory not.
    with worker:
        api = worker.wait_ready().api
        again = read_stream(api, f"/executions/{execution_id}/events")
        assert again.ended
        assert [e.id for e in again.events] == [e.id for e in before.events], again.types
        middle = len(before.events) // 2
        for path in (f"/workflows/{workflow_id}/events", f"/departments/{department}/events"):
            resumed = read_stream(
                api, path, last_event_id=before.events[middle].id, until_id=before.events[-1].id
            )
            after = [e.id for e in resumed.events]
            assert after == [e.id for e in before.events[middle + 1 :]], (path, resumed.types)
