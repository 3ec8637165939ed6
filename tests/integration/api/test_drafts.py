"""Drafts on a worker, the tests' chat server playing the model: `POST /api/v1/drafts` and
`braidflow draft` get a broken definition first, send braidflow's problems back, and get a
valid one; `--deploy` deploys it, `--edit` shows the diff; a viewer may not draft. Dev mode's
stand-in model (the demo services) says it cannot draft, and both say so."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from background_loop import BackgroundLoop
from llm_server import ChatServer, serving
from suite_broker import SuiteBroker
from workers import WorkerApi, WorkerProcess

from braidflow.connectors.demo_services import DEMO_NO_DRAFT, MODEL_CONNECTION
from braidflow.topology import load_workflow
from braidflow.topology.drafts import DECLINE, INSTRUCTIONS

KEY = "sk-suite-drafts-51c9"
SENTENCE = (
    "When a high-priority ticket arrives, classify it, ask the on-call lead to approve"
    " the reply, then send it"
)

TICKET = {"subject": "Invoice", "body": "Where is it?", "customer_email": "ada@example.test"}

ORDERS = """
id: order-notes
name: Note each order
triggers:
  - event: {types: [order.placed]}
nodes:
  - {id: done, type: end, params: {output: {}}}
edges: []
"""


@pytest.fixture(scope="module")
def chat(background_loop: BackgroundLoop) -> Iterator[tuple[ChatServer, str]]:
    with serving(background_loop, KEY) as served:
        yield served


@pytest.fixture(scope="module")
def worker(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory, chat: tuple[ChatServer, str]
) -> Iterator[WorkerProcess]:
    home = tmp_path_factory.mktemp("drafts-worker")
    connections = home / "connections.yaml"
    connections.write_text(
        f"local:\n  url: {chat[1]}\n  key: ${{secrets.LLM_KEY}}\n"
        f"unkeyed:\n  url: {chat[1]}\n  key: ${{secrets.NOT_SET_KEY}}\n"
    )
    process = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        home / "data",
        home / "worker.log",
        env={"BRAIDFLOW_CONNECTIONS": str(connections), "BRAIDFLOW_SECRET_LLM_KEY": KEY},
    )
    try:
        process.start().wait_ready()
        assert process.api.deploy(ORDERS).status == 201
        yield process
    finally:
        process.stop()


def draft_command(
    worker: WorkerProcess, *args: str, connection: str = "local"
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "braidflow.cli", "draft", *args]
    command += [
        "--model",
        "tiny-1",
        "--connection",
        connection,
        "--api",
        worker.api.base_url,
        "--api-key",
        worker.api.key,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_a_draft_sends_the_problems_back_until_the_definition_is_valid(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    marker = uuid.uuid4().hex
    reply = worker.api.post_json(
        "/drafts",
        {
            "sentence": f"{marker} {SENTENCE}",
            "model": "m-1",
            "connection": "local",
            "input": TICKET,
        },
    )
    assert reply.status == 200, reply
    assert reply.body["valid"] is True
    assert reply.body["problems"] == []
    # Shown as the command shows it: its graph laid out, and a dry run of the input.
    graph = reply.body["graph"]
    assert (graph["id"], graph["version"]) == ("ticket-reply", None)
    assert {n["id"]: n["type"] for n in graph["nodes"]}["classify"] == "classify"
    assert reply.body["dry_run"] == {
        "input": TICKET,
        "path": ["classify", "reply", "approve", "decided", "not_sent"],
        "status": "completed",
        "output": {"label": "question", "sent": False},
    }
    first, second = reply.body["rounds"]
    assert any("unknown type 'clasify'" in p for p in first["problems"])
    assert any("'send' is not a node" in p for p in first["problems"])
    assert second["problems"] == []
    assert reply.body["definition"].count("model: m-1") == 2  # the classify and llm nodes
    assert "diff" not in reply.body
    asked = chat[0].seen(marker)
    assert len(asked) == 2
    system = asked[0].body["messages"][0]["content"]
    assert system.startswith(INSTRUCTIONS)
    assert '"params_llm"' in system  # the format's JSON Schema, with each kind's params
    assert "- order-notes: Note each order" in system
    assert "Known event types:\norder.placed" in system
    assert asked[0].headers["authorization"] == f"Bearer {KEY}"
    assert "unknown type 'clasify'" in asked[1].prompt
    assert worker.api.get("/workflows/ticket-reply").status == 404  # nothing deployed


def test_a_draft_still_invalid_after_its_rounds_says_its_problems(worker: WorkerProcess) -> None:
    reply = worker.api.post_json(
        "/drafts", {"sentence": SENTENCE, "model": "m", "connection": "local", "rounds": 1}
    )
    assert reply.status == 200, reply
    assert reply.body["valid"] is False
    assert any("clasify" in p for p in reply.body["problems"])
    assert len(reply.body["rounds"]) == 1
    assert "graph" not in reply.body and "dry_run" not in reply.body


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"sentence": SENTENCE}, 400, "model"),
        ({"sentence": "", "model": "m"}, 400, "sentence"),
        ({"sentence": SENTENCE, "model": "m", "connection": "openai"}, 400, "connection"),
        ({"sentence": SENTENCE, "model": "m"}, 400, "connection"),  # two: say which
        ({"sentence": SENTENCE, "model": "m", "connection": "local", "rounds": 0}, 400, "rounds"),
        ({"sentence": SENTENCE, "model": "m", "connection": "local", "edit": "no-such"}, 404, None),
    ],
)
def test_a_draft_request_that_cannot_be_drafted_is_refused_naming_why(
    worker: WorkerProcess, payload: dict[str, object], status: int, field: str | None
) -> None:
    reply = worker.api.post_json("/drafts", payload)
    assert reply.status == status, reply
    if field is not None:
        assert reply.body["field"] == field, reply


def test_a_model_that_gives_no_answer_is_a_503_naming_the_connection_and_why(
    worker: WorkerProcess,
) -> None:
    reply = worker.api.post_json(
        "/drafts", {"sentence": SENTENCE, "model": "m", "connection": "unkeyed"}
    )
    assert reply.status == 503, reply
    assert "connection 'unkeyed': SecretNotFound" in reply.body["error"]
    assert "NOT_SET_KEY" in reply.body["error"]


def test_a_viewer_may_not_draft(worker: WorkerProcess) -> None:
    viewer: WorkerApi = worker.api.as_new_key("viewer", f"viewer-{uuid.uuid4().hex[:6]}")
    reply = viewer.post_json("/drafts", {"sentence": SENTENCE, "model": "m", "connection": "local"})
    assert reply.status == 403, reply


def test_the_command_prints_the_draft_its_graph_and_a_dry_run_and_deploys_only_when_asked(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    shown = draft_command(worker, SENTENCE, "--input", json.dumps(TICKET))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "round 1: 2 problem(s) sent back" in out
    assert "# definition (valid after 2 round(s))\nid: ticket-reply\n" in out
    # The printed definition is valid here too, and is the sentence: classify, an
    # approval by the on-call lead, an email.
    printed = out.partition("# definition (valid after 2 round(s))\n")[2].partition("# inspect")[0]
    workflow = load_workflow(printed)
    kinds = {node.type for node in workflow.nodes.values()}
    assert {"classify", "llm", "approval", "email"} <= kinds
    [approval] = [node for node in workflow.nodes.values() if node.type == "approval"]
    assert approval.node.params["approvers"] == ["oncall-lead"]
    assert "roots: classify" in out
    assert "flowchart" in out
    assert f"dry run of ticket-reply with input {json.dumps(TICKET, sort_keys=True)}" in out
    assert "-> classify model tiny-1" in out
    assert 'classify answered {"label": "question", "model": "tiny-1", "usage": {}}' in out
    assert "status: completed" in out  # the approval timed out: rejected, nothing sent
    assert "deployed" not in out
    assert worker.api.get("/workflows/ticket-reply").status == 404

    deployed = draft_command(worker, SENTENCE, "--deploy")
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed ticket-reply version 1" in deployed.stdout
    live = worker.api.get("/workflows/ticket-reply")
    assert live.status == 200
    assert load_workflow(live.body["definition"]).definition == workflow.definition

    edited = draft_command(worker, "--edit", "ticket-reply", "use a cheaper model for step 2")
    assert edited.returncode == 0, edited.stderr
    assert "# diff\n--- ticket-reply (deployed)\n+++ ticket-reply (drafted)\n" in edited.stdout
    assert '+description: "use a cheaper model for step 2"' in edited.stdout
    versions = worker.api.get("/workflows/ticket-reply/versions")
    assert len(versions.body["versions"]) == 1  # --edit without --deploy changes nothing


def test_the_command_exits_1_with_the_problems_when_no_answer_was_valid(
    worker: WorkerProcess,
) -> None:
    shown = draft_command(worker, SENTENCE, "--rounds", "1", "--deploy")
    assert shown.returncode == 1
    assert "no valid definition after 1 rounds" in shown.stderr
    assert "unknown type 'clasify'" in shown.stdout
    assert "deployed" not in shown.stdout


def test_dev_modes_stand_in_model_says_it_cannot_draft_and_the_api_and_command_say_so(
    shared_worker: WorkerProcess,
) -> None:
    """The shared worker's `model` connection is dev mode's stand-in (the demo services)."""
    words = DEMO_NO_DRAFT.removeprefix(DECLINE).strip()
    reply = shared_worker.api.post_json(
        "/drafts", {"sentence": SENTENCE, "model": "tiny-1", "connection": MODEL_CONNECTION}
    )
    assert reply.status == 422, reply
    assert reply.body["error"] == (
        f"model 'tiny-1' at connection '{MODEL_CONNECTION}' did not draft: {words}"
    )
    shown = draft_command(shared_worker, SENTENCE, "--deploy", connection=MODEL_CONNECTION)
    assert shown.returncode == 1
    assert shown.stderr == f"draft: {reply.body['error']}\n"
    assert shown.stdout == ""
