"""`braidflow deploy | run | status`: how executions read on screen, and a dead API."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from braidflow.client_cli import (
    COMMANDS,
    Api,
    Reply,
    client_api,
    execution_lines,
    node_line,
    outcome_lines,
    problem_lines,
    write_dev_key,
)
from braidflow.connectors.broker import free_port

EXAMPLE = Path(__file__).parents[2] / "examples" / "order-chain.yaml"

COMPLETED = {
    "execution_id": "e-42",
    "workflow_id": "order-chain",
    "workflow_version": 3,
    "status": "completed",
    "input": {"sku": "widget-1", "quantity": 12},
    "output": {"order_id": "ord-0001", "total_cents": 13500},
    "error": None,
    "started_at": "2026-11-22T10:00:00.000Z",
    "completed_at": "2026-11-22T10:00:00.250Z",
    "progress": {"total_nodes": 4, "completed_nodes": 4},
    "nodes": [
        {
            "node_id": "stock",
            "status": "completed",
            "attempt": 1,
            "started_at": "2026-11-22T10:00:00.010Z",
            "completed_at": "2026-11-22T10:00:00.022Z",
            "duration_ms": 12,
            "output": {"status": 200},
            "error": None,
        },
        {"node_id": "price", "status": "completed", "attempt": 1, "duration_ms": 3},
        {"node_id": "place", "status": "completed", "attempt": 2, "duration_ms": 41},
        {"node_id": "done", "status": "completed", "attempt": 1, "duration_ms": 0},
    ],
}

FAILED = {
    "execution_id": "e-43",
    "workflow_id": "order-chain",
    "workflow_version": 3,
    "status": "failed",
    "output": None,
    "error": {"type": "ValueError", "message": "only 3 of gadget-7 in stock", "node_id": "price"},
    "started_at": "2026-11-22T10:00:00Z",
    "completed_at": "2026-11-22T10:00:01Z",
    "nodes": [
        {"node_id": "stock", "status": "completed", "attempt": 1, "duration_ms": 9},
        {
            "node_id": "price",
            "status": "failed",
            "attempt": 1,
            "duration_ms": 2,
            "error": {"type": "ValueError", "message": "only 3 of gadget-7 in stock"},
        },
    ],
}


def test_a_node_line_shows_id_status_and_duration() -> None:
    assert node_line({"node_id": "fetch", "status": "completed", "duration_ms": 12}) == (
        "  fetch  completed  12 ms"
    )


def test_a_node_line_pads_the_id_to_the_column_width() -> None:
    assert node_line({"node_id": "a", "status": "running"}, 5) == "  a      running"


def test_a_node_line_names_a_retry_and_the_error() -> None:
    line = node_line(
        {
            "node_id": "place",
            "status": "failed",
            "attempt": 3,
            "duration_ms": 7.6,
            "error": {"type": "HTTPError", "message": "500 from /orders"},
        }
    )
    assert line == "  place  failed  attempt 3  8 ms  HTTPError: 500 from /orders"


def test_a_node_line_without_duration_computes_it_from_the_timestamps() -> None:
    node = {
        "node_id": "n",
        "status": "completed",
        "started_at": "2026-11-22T10:00:00+00:00",
        "completed_at": "2026-11-22T10:00:01.5+00:00",
    }
    assert node_line(node) == "  n  completed  1500 ms"


def test_the_outcome_of_a_completed_execution_is_its_output_as_json() -> None:
    assert outcome_lines(COMPLETED) == [
        "status: completed",
        "output: {",
        '  "order_id": "ord-0001",',
        '  "total_cents": 13500',
        "}",
    ]


def test_the_outcome_of_a_failed_execution_names_the_node_and_the_error() -> None:
    assert outcome_lines(FAILED) == [
        "status: failed",
        "error at node 'price': ValueError: only 3 of gadget-7 in stock",
    ]


def test_status_shows_workflow_timings_nodes_and_output() -> None:
    assert execution_lines(COMPLETED) == [
        "execution  e-42",
        "workflow   order-chain (version 3)",
        "status     completed",
        "started    2026-11-22T10:00:00.000Z",
        "ended      2026-11-22T10:00:00.250Z (250 ms)",
        "progress   4/4 nodes",
        "nodes:",
        "  stock  completed  12 ms",
        "  price  completed  3 ms",
        "  place  completed  attempt 2  41 ms",
        "  done   completed  0 ms",
        'input: {"sku": "widget-1", "quantity": 12}',
        "output: {",
        '  "order_id": "ord-0001",',
        '  "total_cents": 13500',
        "}",
    ]


def test_status_of_a_failed_execution_ends_with_the_error() -> None:
    lines = execution_lines(FAILED)
    assert lines[2] == "status     failed"
    assert "  price  failed  2 ms  ValueError: only 3 of gadget-7 in stock" in lines
    assert lines[-1] == "error at node 'price': ValueError: only 3 of gadget-7 in stock"


def test_status_of_a_just_started_execution_has_no_nodes_yet() -> None:
    assert execution_lines({"execution_id": "e", "workflow_id": "w", "status": "pending"}) == [
        "execution  e",
        "workflow   w",
        "status     pending",
    ]


def test_problems_are_one_line_each_after_the_subject() -> None:
    reply = Reply(400, {"error": "invalid definition", "problems": ["node 'a': x", "edge: y"]})
    assert problem_lines("wf.yaml", reply) == ["wf.yaml: node 'a': x", "wf.yaml: edge: y"]


def test_without_problems_the_error_message_is_the_line() -> None:
    assert problem_lines("e-1", Reply(500, {"error": "boom"})) == ["e-1: boom"]
    assert problem_lines("e-1", Reply(502, "Bad Gateway")) == ["e-1: HTTP 502: Bad Gateway"]
    assert problem_lines("e-1", Reply(503, None)) == ["e-1: HTTP 503"]


@pytest.mark.parametrize(
    "typed",
    ["http://h:8080", "http://h:8080/", "h:8080", "http://h:8080/api/v1", "http://h:8080/api/v1/"],
)
def test_the_api_address_may_be_typed_several_ways(typed: str) -> None:
    assert Api.at(typed).base == "http://h:8080"


# --- the commands against an API that is not there ----------------------------


@pytest.fixture
def cli() -> click.Group:
    """The client commands in a group of their own, as the lead attaches them to `main`."""
    group = click.Group("braidflow")
    for command in COMMANDS:
        group.add_command(command)
    return group


@pytest.fixture
def closed_api() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    "args",
    [
        ["deploy", str(EXAMPLE)],
        ["run", "order-chain", "--input", '{"sku": "widget-1", "quantity": 1}'],
        ["run", "order-chain", "--wait"],
        ["status", "e-42"],
    ],
    ids=["deploy", "run", "run-wait", "status"],
)
def test_a_refused_connection_is_one_line_and_exit_1(
    cli: click.Group, closed_api: str, args: list[str]
) -> None:
    result = CliRunner().invoke(cli, [*args, "--api", closed_api])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        f"error: cannot reach the braidflow API at {closed_api}: Connection refused"
    ]
    assert "Traceback" not in result.output


def test_the_api_address_comes_from_braidflow_api(cli: click.Group, closed_api: str) -> None:
    result = CliRunner().invoke(cli, ["status", "e-42"], env={"BRAIDFLOW_API": closed_api})
    assert result.exit_code == 1
    assert closed_api in result.stderr


def test_deploy_reports_an_unreadable_file_without_calling_the_api(
    cli: click.Group, closed_api: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    result = CliRunner().invoke(cli, ["deploy", str(missing), "--api", closed_api])
    assert result.exit_code == 1
    assert result.stdout == f"{missing}: cannot read: No such file or directory\n"


def test_run_rejects_input_that_is_not_json(cli: click.Group, closed_api: str) -> None:
    result = CliRunner().invoke(cli, ["run", "wf", "--input", "{sku:", "--api", closed_api])
    assert result.exit_code == 2
    assert "not JSON" in result.stderr


def test_the_dev_key_is_sent_only_to_the_api_it_was_written_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert client_api("127.0.0.1:8080").key is None
    written = write_dev_key("http://127.0.0.1:8080", "bfk_dev")
    assert written == tmp_path / "braidflow" / "dev-api-key"
    assert written.stat().st_mode & 0o777 == 0o600
    assert client_api("127.0.0.1:8080").key == "bfk_dev"
    assert client_api("http://10.0.0.7:8080").key is None
