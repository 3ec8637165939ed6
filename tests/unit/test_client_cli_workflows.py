"""Issue 14 on the command line: workflows, executions, delete; JSON from a file or stdin;
pause/resume with a reason; a decision on a paused execution; a paused execution's status.

Against a real HTTP server on 127.0.0.1 imitating the worker's routes, as in
test_client_cli_control.py, and the pure formatting with plain dicts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from braidflow.cli import main
from braidflow.client_cli import execution_lines
from braidflow.client_workflows import execution_summary_line
from braidflow.connectors.broker import free_port

WORKFLOWS = [
    {
        "id": "order-chain",
        "version": 3,
        "name": "Order chain",
        "deployed_at": "2026-12-05T18:00:00.000Z",
    },
    {"id": "fan-out", "version": 1, "name": None, "deployed_at": "2026-12-05T18:01:00.000Z"},
]
EXECUTIONS = [
    {
        "execution_id": "e-2",
        "workflow_id": "order-chain",
        "workflow_version": 3,
        "status": "running",
        "started_at": "2026-12-05T18:02:00.000Z",
        "completed_at": None,
        "event": {"id": "evt-1", "type": "order.placed", "source": "/shop"},
    },
    {
        "execution_id": "e-1",
        "workflow_id": "order-chain",
        "workflow_version": 2,
        "status": "completed",
        "started_at": "2026-12-05T18:01:00.000Z",
        "completed_at": "2026-12-05T18:01:00.250Z",
        "event": None,
    },
]
PAUSED = "e-paused"


@dataclass
class Worker:
    url: str = ""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    async def _note(self, request: web.Request) -> Any:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append((request.method, request.path_qs, body))
        return body

    async def workflows(self, request: web.Request) -> web.Response:
        await self._note(request)
        return web.json_response({"workflows": WORKFLOWS})

    async def executions(self, request: web.Request) -> web.Response:
        await self._note(request)
        workflow = request.match_info["id"]
        if workflow != "order-chain":
            return web.json_response({"error": f"no workflow {workflow!r}"}, status=404)
        status = request.query.get("status")
        if status not in (None, "running", "completed", "failed", "cancelled", "parked"):
            return web.json_response({"error": f"status: {status!r} is not one of …"}, status=400)
        found = [e for e in EXECUTIONS if status in (None, e["status"])]
        return web.json_response({"workflow_id": workflow, "executions": found})

    async def delete(self, request: web.Request) -> web.Response:
        await self._note(request)
        workflow = request.match_info["id"]
        if workflow != "order-chain":
            return web.json_response({"error": f"no workflow {workflow!r}"}, status=404)
        return web.json_response({"id": workflow, "removed": True})

    async def start(self, request: web.Request) -> web.Response:
        await self._note(request)
        return web.json_response({"execution_id": "e-new", "status": "accepted"}, status=202)

    async def decide(self, request: web.Request) -> web.Response:
        body = await self._note(request)
        answer = {"execution_id": request.match_info["id"], "node_id": "review", **body}
        # The worker records the caller: here, the key it was sent.
        answer["by"] = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if request.match_info["id"] == PAUSED:
            return web.json_response({**answer, "applies_on_resume": True}, status=202)
        return web.json_response(answer)

    async def publish(self, request: web.Request) -> web.Response:
        body = await self._note(request)
        return web.json_response({"id": body["id"], "topic": "events.order"}, status=202)

    async def redrive(self, request: web.Request) -> web.Response:
        await self._note(request)
        answer = {"dead_letter_id": "dl-1", "execution_id": "e-1", "node_id": "pay"}
        return web.json_response(answer, status=202)

    async def control(self, request: web.Request) -> web.Response:
        await self._note(request)
        answer = {"execution_id": request.match_info["id"], "action": request.match_info["action"]}
        return web.json_response(answer, status=202)


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    worker = Worker()
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/api/v1/workflows", worker.workflows)
    app.router.add_get("/api/v1/workflows/{id}/executions", worker.executions)
    app.router.add_delete("/api/v1/workflows/{id}", worker.delete)
    app.router.add_post("/api/v1/workflows/{id}/executions", worker.start)
    app.router.add_post("/api/v1/executions/{id}/approvals/{node}", worker.decide)
    app.router.add_post("/api/v1/executions/{id}/{action:cancel|pause|resume}", worker.control)
    app.router.add_post("/api/v1/events", worker.publish)
    app.router.add_post("/api/v1/dead-letters/{id}/redrive", worker.redrive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    worker.url = f"http://127.0.0.1:{port}"
    yield worker
    await runner.cleanup()


async def invoke(worker: Worker, *args: str, stdin: str | None = None) -> Result:
    """The real `braidflow` group, in a thread: the request needs this loop free to answer."""
    runner = CliRunner(env={"USER": "ana", "BRAIDFLOW_API_KEY": "ana"})
    group: click.Group = main
    return await asyncio.to_thread(runner.invoke, group, [*args, "--api", worker.url], input=stdin)


# --- workflows, executions, delete ---------------------------------------------------


async def test_workflows_lists_id_version_name_and_deployment_time(worker: Worker) -> None:
    result = await invoke(worker, "workflows")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "order-chain  version 3  Order chain  2026-12-05T18:00:00.000Z",
        "fan-out      version 1  -  2026-12-05T18:01:00.000Z",
    ]


async def test_executions_lists_newest_first_with_the_starting_event(worker: Worker) -> None:
    result = await invoke(worker, "executions", "order-chain")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2026-12-05T18:02:00.000Z  e-2  v3  running    -  event order.placed evt-1",
        "2026-12-05T18:01:00.000Z  e-1  v2  completed  2026-12-05T18:01:00.250Z",
    ]
    assert worker.requests == [("GET", "/api/v1/workflows/order-chain/executions?limit=50", None)]


async def test_executions_passes_status_and_limit(worker: Worker) -> None:
    result = await invoke(worker, "executions", "order-chain", "--status", "failed", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no executions of order-chain with status failed\n"
    assert worker.requests == [
        ("GET", "/api/v1/workflows/order-chain/executions?status=failed&limit=5", None)
    ]


async def test_executions_passes_the_search_options(worker: Worker) -> None:
    result = await invoke(
        worker,
        "executions",
        "order-chain",
        "--from",
        "2026-12-01T00:00:00Z",
        "--event-type",
        "order.placed",
        "--input",
        "customer.name=ada",
        "--input",
        "amount=5",
    )
    assert result.exit_code == 0, result.output
    assert worker.requests == [
        (
            "GET",
            "/api/v1/workflows/order-chain/executions?limit=50&from=2026-12-01T00%3A00%3A00Z"
            "&event_type=order.placed&input.customer.name=ada&input.amount=5",
            None,
        )
    ]


async def test_an_input_option_without_a_value_is_refused(worker: Worker) -> None:
    result = await invoke(worker, "executions", "order-chain", "--input", "customer")
    assert result.exit_code == 2
    assert "--input" in result.stderr and "FIELD=VALUE" in result.stderr
    assert worker.requests == []


async def test_an_unknown_status_is_the_api_s_one_line(worker: Worker) -> None:
    result = await invoke(worker, "executions", "order-chain", "--status", "sleeping")
    assert (result.exit_code, result.stderr) == (1, "error: status: 'sleeping' is not one of …\n")


async def test_executions_of_an_unknown_workflow_is_one_line(worker: Worker) -> None:
    result = await invoke(worker, "executions", "nope")
    assert (result.exit_code, result.stderr) == (1, "error: no workflow 'nope'\n")


async def test_delete_removes_the_workflow_and_says_running_ones_go_on(worker: Worker) -> None:
    result = await invoke(worker, "delete", "order-chain")
    assert result.exit_code == 0, result.output
    assert result.stdout == "deleted order-chain; running executions of it go on\n"
    assert worker.requests == [("DELETE", "/api/v1/workflows/order-chain", None)]
    unknown = await invoke(worker, "delete", "nope")
    assert (unknown.exit_code, unknown.stderr) == (1, "error: no workflow 'nope'\n")


def test_an_execution_line_survives_missing_fields() -> None:
    assert execution_summary_line({}) == "?  ?  v?  ?          -"


# --- JSON from a file or from stdin ----------------------------------------------------


async def test_run_reads_a_large_input_from_a_file(worker: Worker, tmp_path: Path) -> None:
    big = {"items": ["x" * 1000] * 2000}  # 2 MB: too long for a command line
    path = tmp_path / "input.json"
    path.write_text(json.dumps(big))
    result = await invoke(worker, "run", "order-chain", "--input", f"@{path}")
    assert result.exit_code == 0, result.output
    assert worker.requests[-1][2] == {"input": big}


async def test_run_reads_the_input_from_stdin(worker: Worker) -> None:
    result = await invoke(worker, "run", "order-chain", "--input", "-", stdin='{"sku": "w-1"}')
    assert result.exit_code == 0, result.output
    assert worker.requests[-1][2] == {"input": {"sku": "w-1"}}


async def test_approve_reads_its_data_from_a_file(worker: Worker, tmp_path: Path) -> None:
    path = tmp_path / "reply.json"
    path.write_text('{"amount": 12}')
    result = await invoke(
        worker, "approve", "e-1", "review", "--choice", "approve", "--data", f"@{path}"
    )
    assert result.exit_code == 0, result.output
    assert worker.requests[-1][2]["data"] == {"amount": 12}


async def test_publish_reads_its_data_from_a_file(worker: Worker, tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text('{"order": 7}')
    result = await invoke(worker, "publish", "order.placed", "--data", f"@{path}")
    assert result.exit_code == 0, result.output
    assert worker.requests[-1][2]["data"] == {"order": 7}


async def test_redrive_reads_the_patched_input_from_stdin(worker: Worker) -> None:
    result = await invoke(worker, "redrive", "dl-1", "--input", "-", stdin='{"amount": 5}')
    assert result.exit_code == 0, result.output
    assert worker.requests[-1][2] == {"input": {"amount": 5}}


async def test_a_missing_or_broken_input_file_is_one_line_naming_it(
    worker: Worker, tmp_path: Path
) -> None:
    missing = await invoke(worker, "run", "order-chain", "--input", f"@{tmp_path}/none.json")
    assert missing.exit_code == 2
    assert f"cannot read {tmp_path}/none.json: No such file or directory" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": 1,\n')
    bad = await invoke(worker, "run", "order-chain", "--input", f"@{broken}")
    assert bad.exit_code == 2 and f"not JSON ({broken})" in bad.stderr
    assert "Traceback" not in missing.output + bad.output
    assert worker.requests == []


def test_dry_run_reads_its_input_from_stdin() -> None:
    example = Path(__file__).parents[2] / "examples" / "order-chain.yaml"
    result = CliRunner().invoke(
        main, ["dry-run", str(example), "--input", "-"], input='{"sku": "widget-1", "quantity": 2}'
    )
    assert 'with input {"quantity": 2, "sku": "widget-1"}' in result.stdout, result.output


# --- pause and resume with a reason; a decision on a paused execution --------------------


@pytest.mark.parametrize("action", ["pause", "resume"])
async def test_pause_and_resume_send_the_reason(worker: Worker, action: str) -> None:
    result = await invoke(worker, action, "e-1", "--reason", "audit of order 7")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{action} requested for e-1\n"
    assert worker.requests == [
        ("POST", f"/api/v1/executions/e-1/{action}", {"reason": "audit of order 7"})
    ]


async def test_approving_a_paused_execution_succeeds_and_says_it_applies_on_resume(
    worker: Worker,
) -> None:
    result = await invoke(worker, "approve", PAUSED, "review", "--choice", "approve")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "approved: review of e-paused: approve by ana",
        "the execution is paused: the decision applies when it is resumed",
    ]


# --- status of a paused execution, what started it, its control record ------------------

PAUSED_VIEW = {
    "execution_id": PAUSED,
    "workflow_id": "hire",
    "workflow_version": 1,
    "status": "running",
    "paused": True,
    "held": 2,
    "held_transitions": [
        {"kind": "NodeCompleted", "id": "e/fetch/1", "node_id": "fetch"},
        {"kind": "ResumeExecution", "id": "e/r", "node_id": None},
    ],
    "started_at": "2026-12-05T18:00:00.000Z",
    "started_by": {
        "kind": "event",
        "id": "evt-7",
        "type": "person.hired",
        "source": "/hr",
        "subject": "ada",
        "time": "2026-12-05T17:59:59Z",
    },
    "control": [
        {
            "action": "pause",
            "by": "ana",
            "at": "2026-12-05T18:00:01.000Z",
            "node_id": None,
            "reason": "audit",
        },
        {
            "action": "approval",
            "by": "bob",
            "at": "2026-12-05T18:00:00.500Z",
            "node_id": "ask",
            "reason": None,
        },
    ],
    "nodes": [{"node_id": "ask", "status": "waiting", "attempt": 1}],
}


def test_status_of_a_paused_execution_says_paused_and_what_is_held() -> None:
    lines = execution_lines(PAUSED_VIEW)
    assert lines[2] == (
        "status     paused (2 transitions held until resumed: NodeCompleted fetch, ResumeExecution)"
    )
    assert lines[4] == (
        "started by event person.hired id evt-7 from /hr subject ada at 2026-12-05T17:59:59Z"
    )
    assert lines[-3:] == [
        "control:",
        "  2026-12-05T18:00:01.000Z  pause by ana: audit",
        "  2026-12-05T18:00:00.500Z  approval ask by bob",
    ]


def test_a_paused_execution_with_nothing_held_and_one_that_ended_read_right() -> None:
    one = {**PAUSED_VIEW, "held": 1, "held_transitions": []}
    assert execution_lines(one)[2] == "status     paused (1 transition held until resumed)"
    assert execution_lines({**PAUSED_VIEW, "status": "cancelled"})[2] == "status     cancelled"
    assert execution_lines({**PAUSED_VIEW, "paused": False})[2] == "status     running"


@pytest.mark.parametrize(
    ("started_by", "line"),
    [
        ({"kind": "api"}, "started by api"),
        (
            {"kind": "parent", "execution_id": "e-0", "workflow_id": "outer", "node_id": "call"},
            "started by parent e-0 (outer, node call)",
        ),
        (
            {"kind": "schedule", "id": "w/0/1", "type": "braidflow.schedule"},
            "started by schedule braidflow.schedule id w/0/1",
        ),
    ],
)
def test_status_says_what_started_the_execution(started_by: dict[str, Any], line: str) -> None:
    assert line in execution_lines({**PAUSED_VIEW, "started_by": started_by})
