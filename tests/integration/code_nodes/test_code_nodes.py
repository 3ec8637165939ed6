"""Code nodes on a real worker: ordinary code completes with what `main` returns and its
prints in the node run's log; code that tries to escape fails its node (an `on_error` edge
catches a broken limit, named); a definition whose source has no `main` is refused at
deploy; a worker without bwrap fails the node and never runs the code."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.connectors.broker import free_port

SCORE = """
id: {id}
input:
  type: object
  properties:
    words: {{type: array, items: {{type: string}}}}
nodes:
  - id: score
    type: code
    params:
      source: |
        import re

        def main(input):
            urgent = [w for w in input["words"] if re.fullmatch(r"(?i)urgent|down", w)]
            print("urgent words:", urgent)
            return {{"score": len(urgent), "urgent": bool(urgent)}}
      input: {{words: "${{input.words}}"}}
  - {{id: done, type: end, params: {{output: "${{nodes.score.output}}"}}}}
edges:
  - {{from: score, to: done}}
"""

ESCAPES = """
id: {id}
nodes:
  - id: peek
    type: code
    params:
      source: |
        def main(input):
            return open("/etc/passwd").read()
  - {{id: done, type: end}}
edges:
  - {{from: peek, to: done}}
"""

SPIN = """
id: {id}
nodes:
  - id: spin
    type: code
    params:
      source: |
        def main(input):
            while True:
                pass
      limits: {{cpu_ms: 200}}
  - id: caught
    type: end
    params: {{output: {{error: "${{nodes.spin.error}}"}}}}
  - {{id: done, type: end}}
edges:
  - {{from: spin, to: done}}
  - {{from: spin, to: caught, on_error: true}}
"""

NO_MAIN = """
id: {id}
nodes:
  - id: calc
    type: code
    params: {{source: "def mian(input):\\n    return 1\\n"}}
  - {{id: done, type: end}}
edges:
  - {{from: calc, to: done}}
"""


def deployed(worker: WorkerProcess, template: str) -> str:
    workflow = f"code-{uuid.uuid4().hex[:8]}"
    reply = worker.api.deploy(template.format(id=workflow))
    assert reply.status == 201, reply
    return workflow


def test_ordinary_code_completes_with_its_output_and_its_prints_in_the_log(
    shared_worker: WorkerProcess,
) -> None:
    workflow = deployed(shared_worker, SCORE)
    execution_id = shared_worker.api.start(workflow, {"words": ["the", "site", "is", "DOWN"]})
    view = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert view["status"] == "completed", view
    assert view["output"] == {"score": 1, "urgent": True}
    logs = shared_worker.api.get(f"/executions/{execution_id}/logs")
    assert logs.status == 200, logs
    [run] = logs.body["logs"]
    assert run["node_id"] == "score"
    assert [line["message"] for line in run["lines"]] == ["urgent words: ['DOWN']"]


def test_code_reading_etc_passwd_fails_its_node_and_the_execution(
    shared_worker: WorkerProcess,
) -> None:
    execution_id = shared_worker.api.start(deployed(shared_worker, ESCAPES), None)
    view = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert view["status"] == "failed", view
    assert view["error"] == {
        "type": "FileNotFoundError",
        "message": "[Errno 2] No such file or directory: '/etc/passwd' (line 2 of the source)",
        "node_id": "peek",
    }


def test_a_broken_limit_is_named_and_an_on_error_edge_catches_it(
    shared_worker: WorkerProcess,
) -> None:
    execution_id = shared_worker.api.start(deployed(shared_worker, SPIN), None)
    view = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert view["status"] == "completed", view
    assert view["output"] == {
        "error": {"type": "code.cpu_limit", "message": "used its 200 ms of CPU"}
    }


def test_a_source_without_main_is_refused_at_deploy(shared_worker: WorkerProcess) -> None:
    reply = shared_worker.api.deploy(NO_MAIN.format(id=f"code-{uuid.uuid4().hex[:8]}"))
    assert reply.status == 400, reply
    assert reply.body["problems"] == [
        "node 'calc': params.source defines no top-level `def main(input)`"
    ]


@pytest.fixture(scope="module")
def worker_without_bwrap(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory
) -> WorkerProcess:
    home = Path(tmp_path_factory.mktemp("no-bwrap"))
    (home / "bin").mkdir()
    worker = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        home / "data",
        home / "worker.log",
        api_port=free_port(),
        env={"PATH": str(home / "bin")},
    )
    return worker


def test_a_worker_without_bwrap_fails_code_nodes_and_says_so_at_start(
    worker_without_bwrap: WorkerProcess,
) -> None:
    with worker_without_bwrap as worker:
        worker.wait_ready()
        assert "bubblewrap (bwrap) is not on PATH" in worker.log()
        execution_id = worker.api.start(deployed(worker, SCORE), {"words": []})
        view = worker.wait_until_finished([execution_id])[execution_id]
    assert view["status"] == "failed", view
    assert view["error"]["type"] == "code.sandbox_unavailable"
    assert "never run unsandboxed" in view["error"]["message"]
