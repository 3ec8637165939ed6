"""approve, approvals, cancel/pause/resume, dead-letters, redrive: against a real HTTP server
on 127.0.0.1 that imitates the worker's routes and remembers what it was sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import click
import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from braidflow.client_cli import COMMANDS, approval_line, dead_letter_line
from braidflow.connectors.broker import free_port

RUNNING = "e-1"
FINISHED = "e-done"
# A slash and a space: they must reach the server as one quoted path segment.
ODD_ID = "e/2 x"

APPROVAL = {
    "execution_id": RUNNING,
    "node_id": "review",
    "workflow_id": "expense",
    "message": "Approve 120 EUR\nfor travel?",
    "choices": ["approve", "reject"],
    "department": "finance",
    "timeout_at": "2026-11-23T10:00:00Z",
    "requested_at": "2026-11-22T10:00:00Z",
}
OTHER_APPROVAL = {
    **APPROVAL,
    "execution_id": "e-9",
    "node_id": "sign",
    "workflow_id": "hiring",
    "department": "hr",
    "message": "Sign the offer",
    "choices": ["sign"],
    "requested_at": "2026-11-22T11:00:00Z",
}
NODE_LETTER = {
    "id": "dl-1",
    "kind": "node",
    "at": "2026-11-22T10:05:00Z",
    "workflow_id": "expense",
    "execution_id": RUNNING,
    "node_id": "pay",
    "errors": [
        {"type": "Timeout", "message": "no answer in 30 s"},
        {"type": "HTTPError", "message": "500 from /payments"},
    ],
}
RECORD_LETTER = {
    "id": "dl-2",
    "kind": "record",
    "at": "2026-11-22T10:06:00Z",
    "reason": "not a CloudEvent: no specversion",
}


@dataclass
class Worker:
    """The worker's operator routes, answering as the brief describes."""

    url: str = ""
    bodies: list[tuple[str, Any]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    decided: set[tuple[str, str]] = field(default_factory=set)

    async def _body(self, request: web.Request) -> Any:
        body = json.loads(await request.read())
        self.bodies.append((request.raw_path, body))
        return body

    async def decide(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        execution_id, node_id = request.match_info["id"], request.match_info["node"]
        if execution_id not in (RUNNING, ODD_ID):
            return web.json_response({"error": f"no execution {execution_id!r}"}, status=404)
        if node_id != "review":
            return web.json_response(
                {"error": f"no approval node {node_id!r} in {execution_id!r}"}, status=404
            )
        if (execution_id, node_id) in self.decided:
            return web.json_response({"error": "review was already decided"}, status=409)
        problems = []
        if body["choice"] not in APPROVAL["choices"]:
            problems.append(f"choice: {body['choice']!r} is not one of approve, reject")
        if body["data"] is not None and not isinstance(body["data"].get("amount"), int):
            problems.append("data.amount: must be an integer")
        if problems:
            return web.json_response(
                {"error": "the decision breaks the approval's rules", "problems": problems},
                status=422,
            )
        self.decided.add((execution_id, node_id))
        return web.json_response(
            {
                "execution_id": execution_id,
                "node_id": node_id,
                "choice": body["choice"],
                # The worker records the caller: here, the key it was sent.
                "by": request.headers.get("Authorization", "").removeprefix("Bearer ")
                or "anonymous",
                "decided_at": "2026-11-22T10:01:00Z",
            }
        )

    async def approvals(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        found = [
            a
            for a in (APPROVAL, OTHER_APPROVAL)
            if request.query.get("workflow", a["workflow_id"]) == a["workflow_id"]
            and request.query.get("department", a["department"]) == a["department"]
        ]
        return web.json_response({"approvals": found})

    async def control(self, request: web.Request) -> web.Response:
        await self._body(request)
        execution_id, action = request.match_info["id"], request.match_info["action"]
        if execution_id == FINISHED:
            return web.json_response({"error": f"{execution_id!r} already completed"}, status=409)
        if execution_id not in (RUNNING, ODD_ID):
            return web.json_response({"error": f"no execution {execution_id!r}"}, status=404)
        return web.json_response({"execution_id": execution_id, "action": action}, status=202)

    async def dead_letters(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        found = [
            letter
            for letter in (NODE_LETTER, RECORD_LETTER)
            if request.query.get("kind", letter["kind"]) == letter["kind"]
            and request.query.get("workflow", letter.get("workflow_id"))
            == letter.get("workflow_id")
        ]
        return web.json_response({"dead_letters": found[: int(request.query.get("limit", 100))]})

    async def redrive(self, request: web.Request) -> web.Response:
        await self._body(request)
        letter_id = request.match_info["id"]
        if letter_id == "dl-2":
            return web.json_response(
                {"error": "dl-2 is a record dead letter; only a node can be redriven"},
                status=409,
            )
        if letter_id != "dl-1":
            return web.json_response({"error": f"no dead letter {letter_id!r}"}, status=404)
        answer = {"dead_letter_id": letter_id, "execution_id": RUNNING, "node_id": "pay"}
        return web.json_response(answer, status=202)


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    worker = Worker()
    app = web.Application()
    app.router.add_post("/api/v1/executions/{id}/approvals/{node}", worker.decide)
    app.router.add_get("/api/v1/approvals", worker.approvals)
    app.router.add_post("/api/v1/executions/{id}/{action:cancel|pause|resume}", worker.control)
    app.router.add_get("/api/v1/dead-letters", worker.dead_letters)
    app.router.add_post("/api/v1/dead-letters/{id}/redrive", worker.redrive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    worker.url = f"http://127.0.0.1:{port}"
    yield worker
    await runner.cleanup()


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("braidflow")
    for command in COMMANDS:
        group.add_command(command)
    return group


async def invoke(
    cli: click.Group, worker: Worker, *args: str, env: dict[str, str | None] | None = None
) -> Result:
    """Run the command in a thread: its blocking request needs this loop free to answer."""
    runner = CliRunner(env={"USER": "ana", "BRAIDFLOW_API_KEY": "ana", **(env or {})})
    return await asyncio.to_thread(runner.invoke, cli, [*args, "--api", worker.url])


# --- approve -----------------------------------------------------------------------


async def test_approve_sends_the_decision_and_prints_it(cli: click.Group, worker: Worker) -> None:
    result = await invoke(
        cli,
        worker,
        "approve",
        RUNNING,
        "review",
        "--choice",
        "approve",
        "--api-key",
        "bea",
        "--comment",
        "within budget",
        "--data",
        '{"amount": 120}',
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "approved: review of e-1: approve by bea\n"
    assert worker.bodies == [
        (
            "/api/v1/executions/e-1/approvals/review",
            {"choice": "approve", "comment": "within budget", "data": {"amount": 120}},
        )
    ]


async def test_approve_is_by_the_key_and_sends_nulls_for_what_was_not_given(
    cli: click.Group, worker: Worker
) -> None:
    result = await invoke(cli, worker, "approve", RUNNING, "review", "--choice", "reject")
    assert result.exit_code == 0, result.output
    assert result.stdout == "approved: review of e-1: reject by ana\n"
    assert worker.bodies[0][1] == {"choice": "reject", "comment": None, "data": None}


async def test_without_a_key_no_credential_is_sent(cli: click.Group, worker: Worker) -> None:
    result = await invoke(
        cli,
        worker,
        "approve",
        RUNNING,
        "review",
        "--choice",
        "approve",
        env={"BRAIDFLOW_API_KEY": None, "XDG_CONFIG_HOME": "/nonexistent"},
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(" by anonymous\n")
    assert "by" not in worker.bodies[0][1]


async def test_approve_quotes_the_ids_in_the_path(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "approve", ODD_ID, "review", "--choice", "approve")
    assert result.exit_code == 0, result.output
    assert result.stdout == "approved: review of e/2 x: approve by ana\n"
    assert worker.bodies[0][0] == "/api/v1/executions/e%2F2%20x/approvals/review"


@pytest.mark.parametrize(
    ("execution_id", "node_id", "message"),
    [
        ("e-404", "review", "error: no execution 'e-404'\n"),
        (RUNNING, "pay", "error: no approval node 'pay' in 'e-1'\n"),
    ],
    ids=["execution", "node"],
)
async def test_approving_what_does_not_exist_is_one_line(
    cli: click.Group, worker: Worker, execution_id: str, node_id: str, message: str
) -> None:
    result = await invoke(cli, worker, "approve", execution_id, node_id, "--choice", "approve")
    assert result.exit_code == 1
    assert result.stderr == message
    assert result.stdout == ""


async def test_a_second_decision_is_a_conflict(cli: click.Group, worker: Worker) -> None:
    first = await invoke(cli, worker, "approve", RUNNING, "review", "--choice", "approve")
    assert first.exit_code == 0, first.output
    second = await invoke(cli, worker, "approve", RUNNING, "review", "--choice", "reject")
    assert second.exit_code == 1
    assert second.stderr == "error: review was already decided\n"


async def test_a_refused_decision_prints_each_problem_on_its_own_line(
    cli: click.Group, worker: Worker
) -> None:
    result = await invoke(
        cli, worker, "approve", RUNNING, "review", "--choice", "maybe", "--data", '{"amount": "x"}'
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: the decision breaks the approval's rules",
        "  choice: 'maybe' is not one of approve, reject",
        "  data.amount: must be an integer",
    ]


async def test_approve_needs_a_choice_and_json_data(cli: click.Group, worker: Worker) -> None:
    no_choice = await invoke(cli, worker, "approve", RUNNING, "review")
    assert no_choice.exit_code == 2
    assert "--choice" in no_choice.stderr
    bad_data = await invoke(
        cli, worker, "approve", RUNNING, "review", "--choice", "approve", "--data", "{amount:"
    )
    assert bad_data.exit_code == 2
    assert "not JSON" in bad_data.stderr
    assert worker.bodies == []


# --- approvals ---------------------------------------------------------------------


async def test_approvals_lists_one_line_each(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "approvals")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2026-11-22T10:00:00Z  expense  e-1  review  [approve, reject]  Approve 120 EUR for travel?",
        "2026-11-22T11:00:00Z  hiring  e-9  sign  [sign]  Sign the offer",
    ]
    assert worker.queries == [{}]


async def test_approvals_passes_the_filters(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "approvals", "--workflow", "hiring", "--department", "hr")
    assert result.exit_code == 0, result.output
    assert result.stdout == "2026-11-22T11:00:00Z  hiring  e-9  sign  [sign]  Sign the offer\n"
    assert worker.queries == [{"workflow": "hiring", "department": "hr"}]


async def test_no_pending_approvals_is_said(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "approvals", "--department", "legal")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no pending approvals\n"


def test_an_approval_line_survives_missing_fields() -> None:
    assert approval_line({"node_id": "n"}) == "?  ?  ?  n  [?]"


# --- cancel, pause, resume -----------------------------------------------------------


@pytest.mark.parametrize("action", ["cancel", "pause", "resume"])
async def test_a_control_request_prints_what_was_requested(
    cli: click.Group, worker: Worker, action: str
) -> None:
    result = await invoke(cli, worker, action, RUNNING, "--api-key", "bea")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{action} requested for e-1\n"
    assert worker.bodies == [(f"/api/v1/executions/e-1/{action}", {})]


async def test_cancel_sends_the_reason(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "cancel", ODD_ID, "--reason", "duplicate order")
    assert result.exit_code == 0, result.output
    assert result.stdout == "cancel requested for e/2 x\n"
    assert worker.bodies == [("/api/v1/executions/e%2F2%20x/cancel", {"reason": "duplicate order"})]


@pytest.mark.parametrize(
    ("execution_id", "message"),
    [("e-404", "error: no execution 'e-404'\n"), (FINISHED, "error: 'e-done' already completed\n")],
    ids=["unknown", "finished"],
)
@pytest.mark.parametrize("action", ["cancel", "pause", "resume"])
async def test_a_control_request_refused_is_one_line(
    cli: click.Group, worker: Worker, action: str, execution_id: str, message: str
) -> None:
    result = await invoke(cli, worker, action, execution_id)
    assert result.exit_code == 1
    assert result.stderr == message
    assert result.stdout == ""


# --- dead letters ------------------------------------------------------------------


async def test_dead_letters_lists_nodes_with_their_last_error_and_records_with_the_reason(
    cli: click.Group, worker: Worker
) -> None:
    result = await invoke(cli, worker, "dead-letters")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2026-11-22T10:05:00Z  dl-1  expense/pay  HTTPError: 500 from /payments",
        "2026-11-22T10:06:00Z  dl-2  not a CloudEvent: no specversion",
    ]
    assert worker.queries == [{}]


async def test_dead_letters_passes_the_filters(cli: click.Group, worker: Worker) -> None:
    result = await invoke(
        cli, worker, "dead-letters", "--workflow", "expense", "--kind", "node", "--limit", "5"
    )
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == "2026-11-22T10:05:00Z  dl-1  expense/pay  HTTPError: 500 from /payments\n"
    )
    assert worker.queries == [{"workflow": "expense", "kind": "node", "limit": "5"}]


async def test_no_dead_letters_is_said(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "dead-letters", "--workflow", "hiring")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no dead letters\n"


async def test_dead_letters_checks_kind_and_limit_here(cli: click.Group, worker: Worker) -> None:
    bad_kind = await invoke(cli, worker, "dead-letters", "--kind", "task")
    assert bad_kind.exit_code == 2
    bad_limit = await invoke(cli, worker, "dead-letters", "--limit", "0")
    assert bad_limit.exit_code == 2
    assert worker.queries == []


def test_a_redriven_dead_letter_says_so() -> None:
    letter = {**NODE_LETTER, "redriven_at": "2026-11-22T10:09:00Z"}
    assert dead_letter_line(letter) == (
        "2026-11-22T10:05:00Z  dl-1  expense/pay  HTTPError: 500 from /payments"
        "  redriven at 2026-11-22T10:09:00Z"
    )


def test_a_dead_letter_line_survives_missing_fields() -> None:
    assert dead_letter_line({"kind": "node"}) == "?  ?  ?/?  no error"
    assert dead_letter_line({"kind": "record", "id": "d"}) == "?  d  ?"


# --- redrive -----------------------------------------------------------------------


async def test_redrive_prints_the_node_and_execution(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "redrive", "dl-1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "redriving pay of e-1\n"
    assert worker.bodies == [("/api/v1/dead-letters/dl-1/redrive", {})]


async def test_redrive_sends_a_patched_input(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "redrive", "dl-1", "--input", '{"amount": 100}')
    assert result.exit_code == 0, result.output
    assert worker.bodies[0][1] == {"input": {"amount": 100}}


async def test_redrive_sends_a_null_input_when_asked(cli: click.Group, worker: Worker) -> None:
    result = await invoke(cli, worker, "redrive", "dl-1", "--input", "null")
    assert result.exit_code == 0, result.output
    assert worker.bodies[0][1] == {"input": None}


@pytest.mark.parametrize(
    ("letter_id", "message"),
    [
        ("dl-404", "error: no dead letter 'dl-404'\n"),
        ("dl-2", "error: dl-2 is a record dead letter; only a node can be redriven\n"),
    ],
    ids=["unknown", "record"],
)
async def test_a_redrive_refused_is_one_line(
    cli: click.Group, worker: Worker, letter_id: str, message: str
) -> None:
    result = await invoke(cli, worker, "redrive", letter_id)
    assert result.exit_code == 1
    assert result.stderr == message


# --- no API, or an API without these routes ------------------------------------------

EVERY_COMMAND = [
    ["approve", RUNNING, "review", "--choice", "approve"],
    ["approvals"],
    ["cancel", RUNNING],
    ["pause", RUNNING],
    ["resume", RUNNING],
    ["dead-letters", "--limit", "3"],
    ["redrive", "dl-1"],
]
ROUTES = [
    "POST {}/api/v1/executions/e-1/approvals/review",
    "GET {}/api/v1/approvals",
    "POST {}/api/v1/executions/e-1/cancel",
    "POST {}/api/v1/executions/e-1/pause",
    "POST {}/api/v1/executions/e-1/resume",
    "GET {}/api/v1/dead-letters",  # without the query string
    "POST {}/api/v1/dead-letters/dl-1/redrive",
]


NAMES = [args[0] for args in EVERY_COMMAND]


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=NAMES)
async def test_a_refused_connection_is_one_line(cli: click.Group, args: list[str]) -> None:
    api = f"http://127.0.0.1:{free_port()}"
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--api", api])
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot reach the braidflow API at {api}: Connection refused\n"


@pytest.mark.parametrize(
    ("args", "route"), list(zip(EVERY_COMMAND, ROUTES, strict=True)), ids=NAMES
)
async def test_a_worker_without_the_route_is_named_not_taken_for_an_unknown_id(
    cli: click.Group, args: list[str], route: str
) -> None:
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    api = f"http://127.0.0.1:{port}"
    try:
        result = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--api", api])
    finally:
        await runner.cleanup()
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no route {route.format(api)}: is that a braidflow worker of this version?\n"
    )
