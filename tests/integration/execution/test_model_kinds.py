"""The agent library's model kinds on a worker, against the tests' OpenAI-compatible server on
127.0.0.1: a triage workflow classifies a ticket and goes on along the edge its label names,
extracts its fields and sums it up; a label the model keeps getting wrong fails the node. The
connection prices the model: an execution shows what it cost, and a department's budget fails
one that spends more."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from background_loop import BackgroundLoop
from llm_server import ChatServer, serving
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

KEY = "sk-suite-model-kinds-51c2"

TRIAGE = """
id: ticket-triage
input:
  type: object
  required: [ticket]
  properties: {ticket: {type: string}}
nodes:
  - id: sort
    type: classify
    params:
      connection: local
      model: tiny-1
      text: "${input.ticket}"
      labels: {bug: something is broken, question: someone asks how}
      instructions: Tickets of the web team.
  - id: fields
    type: extract
    params:
      connection: local
      model: tiny-1
      text: "${input.ticket}"
      schema:
        type: object
        required: [order]
        properties: {order: {type: string, pattern: "^A-[0-9]+$"}}
  - id: brief
    type: summarize
    params: {connection: local, model: tiny-1, text: "${input.ticket}", max_words: 8}
  - id: fixing
    type: end
    params:
      output:
        went: fix
        order: "${nodes.fields.output.fields.order}"
        tokens: "${nodes.fields.output.usage.total_tokens}"
  - id: answering
    type: end
    params:
      output: {went: answer, brief: "${nodes.brief.output.summary}"}
edges:
  - {from: sort, to: fields, label: bug}
  - {from: sort, to: brief, label: question}
  - {from: fields, to: fixing}
  - {from: brief, to: answering}
"""


FRUGAL = """
kind: Department
name: frugal
settings:
  budget: {per_execution: 0.005}
"""

# Every model call's system message alone is over the budget at the connection's prices.
TWO_BRIEFS = """
id: two-briefs
department: frugal
nodes:
  - {id: first, type: summarize, params: {connection: local, model: tiny-1, text: "${input.ticket}"}}
  - {id: second, type: summarize, params: {connection: local, model: tiny-1, text: "${input.ticket}"}}
  - {id: done, type: end}
edges:
  - {from: first, to: second}
  - {from: second, to: done}
"""


THRIFTY = """
kind: Department
name: thrifty
settings:
  budget: {per_day: 0.005}
"""

ONE_BRIEF = """
id: one-brief
department: thrifty
nodes:
  - {id: brief, type: summarize, params: {connection: local, model: tiny-1, text: "${input.ticket}"}}
  - {id: done, type: end}
edges:
  - {from: brief, to: done}
"""


@pytest.fixture(scope="module")
def chat(background_loop: BackgroundLoop) -> Iterator[tuple[ChatServer, str]]:
    with serving(background_loop, KEY) as served:
        yield served


@pytest.fixture(scope="module")
def worker(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory, chat: tuple[ChatServer, str]
) -> Iterator[WorkerProcess]:
    home = tmp_path_factory.mktemp("model-kinds-worker")
    connections = home / "connections.yaml"
    connections.write_text(
        f"local:\n  url: {chat[1]}\n  key: ${{secrets.LLM_KEY}}\n"
        "  prices: {tiny-1: {prompt: 1000, completion: 1000}}\n"
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
        for text in (TRIAGE, FRUGAL, TWO_BRIEFS, THRIFTY, ONE_BRIEF):
            reply = process.api.deploy(text)
            assert reply.status == 201, reply
        yield process
    finally:
        process.stop()


def ticket(steps: str) -> str:
    """A ticket whose text scripts the test server's answers (tests/integration/llm_server.py)."""
    return f"{uuid.uuid4().hex} | {steps}"


def finished(worker: WorkerProcess, text: str, workflow: str = "ticket-triage") -> dict[str, Any]:
    execution_id = worker.api.start(workflow, {"ticket": text})
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert KEY not in str(execution)
    return execution


def statuses(execution: dict[str, Any]) -> dict[str, str]:
    return {n["node_id"]: n["status"] for n in execution["nodes"]}


def test_a_bug_goes_on_along_the_bug_edge_and_its_fields_are_extracted(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    text = ticket('json:{"label": "bug"} then json:{"order": "A-12"}')
    execution = finished(worker, text)
    assert execution["status"] == "completed", execution
    assert execution["output"]["went"] == "fix"
    assert execution["output"]["order"] == "A-12"
    assert statuses(execution)["brief"] == "skipped"
    classify, extract = server.seen(text)
    assert classify.prompt == text
    assert classify.headers["authorization"] == f"Bearer {KEY}"
    assert "- bug: something is broken" in classify.body["messages"][0]["content"]
    wanted = classify.body["response_format"]["json_schema"]["schema"]
    assert wanted["properties"]["label"] == {"enum": ["bug", "question"]}
    assert extract.body["response_format"]["json_schema"]["schema"]["required"] == ["order"]
    [sort] = [n for n in execution["nodes"] if n["node_id"] == "sort"]
    assert sort["output"]["label"] == "bug"
    assert set(sort["output"]["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    # 1,000 per million tokens: a token costs 0.001.
    tokens = execution["cost"]["tokens"]["tiny-1"]["total_tokens"]
    assert execution["cost"]["money"] == pytest.approx(tokens / 1_000)
    assert sort["output"]["cost"] == sort["output"]["usage"]["total_tokens"] / 1_000
    assert execution["cost"]["attempts"] == 2 and execution["cost"]["retries"] == 0


def test_a_question_goes_on_along_the_question_edge_and_is_summed_up(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    text = ticket('json:{"label": "question"} then text: How do I reset it? ')
    execution = finished(worker, text)
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"went": "answer", "brief": "How do I reset it?"}
    assert statuses(execution)["fields"] == "skipped"
    summarize = server.seen(text)[-1]
    assert "in at most 8 words" in summarize.body["messages"][0]["content"]
    assert "response_format" not in summarize.body


def test_a_label_outside_the_labels_is_asked_again_then_fails_the_node_naming_it(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    text = ticket('json:{"label": "rant"}')
    execution = finished(worker, text)
    assert execution["status"] == "failed", execution
    error = execution["error"]
    assert (error["type"], error["node_id"]) == ("llm.invalid_answer", "sort")
    assert "'rant' is not one of ['bug', 'question']" in error["message"]
    assert len(server.seen(text)) == 3
    assert statuses(execution)["sort"] == "failed"


def test_a_department_budget_fails_the_execution_whose_model_call_spends_past_it(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    text = ticket("text:short")
    execution = finished(worker, text, "two-briefs")
    assert execution["status"] == "failed", execution
    error = execution["error"]
    assert (error["type"], error["node_id"]) == ("budget.exceeded", "first")
    assert "per-execution budget of 0.005" in error["message"]
    assert len(server.seen(text)) == 1
    assert statuses(execution) == {"first": "completed"}
    assert execution["cost"]["money"] > 0.005
    # The department's stats add up what its executions' model calls cost.
    spent = execution["cost"]["money"]
    buckets = until(lambda: department_buckets(worker, spent), "the cost in the stats", 20)
    [node] = {name for b in buckets for name in b["nodes"]}
    assert node == "two-briefs/first"


def department_buckets(worker: WorkerProcess, spent: float) -> list[dict[str, Any]] | None:
    reply = worker.api.get("/stats?department=frugal&window=1h")
    assert reply.status == 200, reply
    buckets = list(reply.body["buckets"])
    cost = sum(b["cost"] for b in buckets)
    return buckets if cost == pytest.approx(spent) and buckets[0]["tokens"] > 0 else None


def test_a_department_whose_day_is_spent_holds_new_executions_queued(
    worker: WorkerProcess,
) -> None:
    # The first runs (nothing spent yet today) and spends past the day's budget.
    first = finished(worker, ticket("text:fine"), "one-brief")
    assert first["status"] == "completed", first
    assert first["cost"]["money"] > 0.005
    held = worker.api.start("one-brief", {"ticket": ticket("text:later")})

    def status() -> str | None:
        reply = worker.api.get(f"/executions/{held}")
        return reply.body["status"] if reply.status == 200 else None

    assert until(lambda: status() != "accepted" and status(), "its start applied") == "queued"
    time.sleep(1)
    assert status() == "queued"
