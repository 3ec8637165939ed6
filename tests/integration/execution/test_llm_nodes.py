"""llm nodes on a worker, against the tests' OpenAI-compatible server on 127.0.0.1: the
worker's connections file names the server and the secret of its key; workflows label
tickets, get their answers asked again, wait out 429s, retry 5xxs, and fail with the reason
named. The key never reaches the execution's state."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from background_loop import BackgroundLoop
from live_streams import read_stream
from llm_server import ChatServer, serving
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.connectors.broker import free_port

KEY = "sk-suite-llm-8d41e7"

LABEL = """
id: llm-label
input:
  type: object
  required: [script]
  properties: {script: {type: string}}
nodes:
  - id: label
    type: llm
    params:
      connection: local
      model: tiny-1
      system: You sort support tickets.
      prompt: "${input.script}"
      temperature: 0
      output:
        type: object
        required: [label]
        properties: {label: {enum: [bug, question]}}
    retry: {max_attempts: 2, initial: 100ms}
  - id: done
    type: end
    params:
      output:
        label: "${nodes.label.output.answer.label}"
        tokens: "${nodes.label.output.usage.total_tokens}"
edges:
  - {from: label, to: done}
"""

SAY = """
id: llm-say
input:
  type: object
  required: [script]
  properties: {script: {type: string}}
nodes:
  - id: say
    type: llm
    params: {connection: local, model: tiny-1, prompt: "${input.script}"}
    retry: {max_attempts: 1}
  - {id: done, type: end, params: {output: {said: "${nodes.say.output.answer}"}}}
edges:
  - {from: say, to: done}
"""

TOOLS = """
id: llm-tools
input:
  type: object
  required: [script]
  properties: {script: {type: string}}
nodes:
  - id: ask
    type: llm
    params:
      connection: local
      model: tiny-1
      prompt: "${input.script}"
      stream: true
      max_tool_rounds: 2
      tools:
        - name: weather
          description: The weather in a city.
          parameters:
            type: object
            required: [city]
            properties: {city: {type: string}, days: {type: integer}}
          http:
            method: GET
            url: "ROOT/tools/echo/weather/{city}"
            headers: {X-Key: "${secrets.LLM_KEY}"}
        - name: page
          description: The title of a web page.
          parameters: {type: object, required: [url], properties: {url: {type: string}}}
          kind: fetch_page
          params: {select: {title: h1}}
    retry: {max_attempts: 1}
  - {id: done, type: end, params: {output: {said: "${nodes.ask.output.answer}"}}}
edges:
  - {from: ask, to: done}
"""


@pytest.fixture(scope="module")
def chat(background_loop: BackgroundLoop) -> Iterator[tuple[ChatServer, str]]:
    """The test endpoint on a free port; its base URL (`.../v1`)."""
    with serving(background_loop, KEY) as served:
        yield served


def connections_file(directory: Path, url: str) -> Path:
    path = directory / "connections.yaml"
    path.write_text(
        f"local:\n  url: {url}\n  key: ${{secrets.LLM_KEY}}\n"
        f"elsewhere:\n  url: {url}\n  key: ${{secrets.OTHER_LLM_KEY}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def worker(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory, chat: tuple[ChatServer, str]
) -> Iterator[WorkerProcess]:
    home = tmp_path_factory.mktemp("llm-worker")
    process = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        home / "data",
        home / "worker.log",
        env={
            "BRAIDFLOW_CONNECTIONS": str(connections_file(home, chat[1])),
            "BRAIDFLOW_SECRET_LLM_KEY": KEY,
            "BRAIDFLOW_SECRET_OTHER_LLM_KEY": "sk-other",
        },
    )
    try:
        process.start().wait_ready()
        for definition in (LABEL, SAY, TOOLS.replace("ROOT", chat[1].removesuffix("/v1"))):
            reply = process.api.deploy(definition)
            assert reply.status == 201, reply
        yield process
    finally:
        process.stop()


def script(steps: str) -> str:
    return f"{uuid.uuid4().hex} | {steps}"


def finished(worker: WorkerProcess, workflow: str, input_: Any) -> dict[str, Any]:
    execution_id = worker.api.start(workflow, input_)
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert KEY not in str(execution)
    return execution


def node(execution: dict[str, Any], node_id: str) -> dict[str, Any]:
    [found] = [n for n in execution["nodes"] if n["node_id"] == node_id]
    return found


def test_a_schema_answer_asked_again_labels_the_ticket_and_reports_its_usage(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    prompt = script('malformed then json:{"label": "bug"}')
    execution = finished(worker, "llm-label", {"script": prompt})
    assert execution["status"] == "completed", execution
    first, second = server.seen(prompt)
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.headers["idempotency-key"] == f"{execution['execution_id']}:label:1"
    assert first.body["messages"][0] == {"role": "system", "content": "You sort support tickets."}
    assert first.body["temperature"] == 0
    assert first.body["response_format"]["type"] == "json_schema"
    assert "not JSON" in second.body["messages"][-1]["content"]
    output = node(execution, "label")["output"]
    assert output["answer"] == {"label": "bug"}
    assert (output["model"], output["finish_reason"]) == ("tiny-1", "stop")
    assert execution["output"] == {"label": "bug", "tokens": output["usage"]["total_tokens"]}
    # The usage reaches the node's lifecycle event with the output.
    events = read_stream(worker.api, f"/executions/{execution['execution_id']}/events").events
    [completed] = [
        e for e in events if e.type == "node.completed" and e.data.get("node_id") == "label"
    ]
    assert completed.data["data"]["usage"] == output["usage"]
    assert set(output["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_a_429_is_waited_out_and_a_5xx_retried_by_the_nodes_retry(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    prompt = script('429:1 then 500 then json:{"label": "question"}')
    execution = finished(worker, "llm-label", {"script": prompt})
    assert execution["status"] == "completed", execution
    assert execution["output"]["label"] == "question"
    label = node(execution, "label")
    assert label["attempt"] == 2
    assert [e["type"] for e in label["errors"]] == ["llm.5xx"]
    keys = [s.headers["idempotency-key"] for s in server.seen(prompt)]
    run = execution["execution_id"]
    assert keys == [f"{run}:label:1", f"{run}:label:1", f"{run}:label:2"]


def test_an_answer_that_keeps_breaking_the_schema_fails_the_node_naming_the_problem(
    worker: WorkerProcess,
) -> None:
    execution = finished(worker, "llm-label", {"script": script('json:{"label": "rant"}')})
    assert execution["status"] == "failed", execution
    error = execution["error"]
    assert (error["type"], error["node_id"]) == ("llm.invalid_answer", "label")
    assert "'rant' is not one of ['bug', 'question']" in error["message"]


def test_a_text_answer(worker: WorkerProcess) -> None:
    execution = finished(worker, "llm-say", {"script": script("text:Hello, Ada")})
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"said": "Hello, Ada"}


def test_a_connection_the_worker_lacks_fails_the_node_naming_it(worker: WorkerProcess) -> None:
    text = SAY.replace("id: llm-say", "id: llm-nowhere").replace(
        "connection: local", "connection: nowhere"
    )
    reply = worker.api.deploy(text)
    assert reply.status == 201, reply
    execution = finished(worker, "llm-nowhere", {"script": "hi"})
    assert execution["status"] == "failed", execution
    error = execution["error"]
    assert error["type"] == "llm.unknown_connection"
    assert "'nowhere'" in error["message"] and "elsewhere, local" in error["message"]


def test_a_department_may_not_use_a_connection_whose_key_it_does_not_list(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    dept = f"sales{uuid.uuid4().hex[:6]}"
    reply = worker.api.deploy(f"kind: Department\nname: {dept}\ncredentials: [OTHER_LLM_KEY]\n")
    assert reply.status == 201, reply
    text = SAY.replace("id: llm-say", f"id: llm-{dept}\ndepartment: {dept}")
    reply = worker.api.deploy(text)
    assert reply.status == 201, reply
    prompt = script("text:never")
    execution = finished(worker, f"llm-{dept}", {"script": prompt})
    assert execution["status"] == "failed", execution
    assert execution["error"]["type"] == "SecretNotAllowed"
    assert "'LLM_KEY'" in execution["error"]["message"]
    assert server.seen(prompt) == []


def test_a_worker_with_a_wrong_connections_file_does_not_start_and_names_the_field(
    tmp_path: Path,
) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text("openai:\n  url: https://api.openai.com/v1\n  key: sk-written-out\n")
    command = [sys.executable, "-m", "braidflow.cli", "worker", "--broker", "127.0.0.1:1"]
    started = subprocess.run(
        [*command, "--api-port", str(free_port()), "--connections", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert f"{path}: openai.key: expected a secret reference" in started.stderr, started.stderr
    assert "Traceback" not in started.stderr


def test_a_tool_call_runs_over_http_and_its_result_goes_back_to_the_model(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    prompt = script('call:weather:{"city": "São Paulo", "days": 2} then reply')
    execution = finished(worker, "llm-tools", {"script": prompt})
    assert execution["status"] == "completed", execution
    run = execution["execution_id"]
    [echoed] = [t for t in server.tool_requests if t["idempotency_key"] == f"{run}:ask:1.tool-1-1"]
    assert (echoed["method"], echoed["path"]) == ("GET", "/tools/echo/weather/S%C3%A3o%20Paulo")
    assert echoed["query"] == {"days": "2"}
    # The tool's header named a secret: the endpoint got its value, the model and the
    # execution's state (`finished` checks) only its name.
    assert echoed["x_key"] == KEY
    assert KEY not in str(server.seen(prompt)[1].body)
    said = execution["output"]["said"]
    assert said.startswith('tool said: {"status": 200, "body": {"method": "GET"'), said
    output = node(execution, "ask")["output"]
    [call] = output["tool_calls"]
    assert (call["round"], call["name"], call["arguments"]) == (
        1,
        "weather",
        {"city": "São Paulo", "days": 2},
    )
    assert call["result"]["body"]["query"] == {"days": "2"}
    assert call["result"]["body"]["x_key"] == "[secrets.LLM_KEY]"
    first, second = server.seen(prompt)
    assert first.body["stream"] is True
    assert second.headers["idempotency-key"] == f"{run}:ask:1.2"
    assert output["usage"]["total_tokens"] > 0


def test_a_tool_call_runs_another_kind_with_the_arguments_as_its_params(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    _, url = chat
    page = f"{url.removesuffix('/v1')}/tools/page/braid"
    prompt = script(f'call:page:{{"url": "{page}"}} then reply')
    execution = finished(worker, "llm-tools", {"script": prompt})
    assert execution["status"] == "completed", execution
    page_output = {"status": 200, "title": None, "fields": {"title": "Page braid"}}
    assert execution["output"]["said"] == f"tool said: {json.dumps(page_output)}"
    [call] = node(execution, "ask")["output"]["tool_calls"]
    assert call["result"] == page_output


def test_a_call_with_bad_arguments_is_answered_with_its_error_and_the_node_goes_on(
    worker: WorkerProcess, chat: tuple[ChatServer, str]
) -> None:
    server, _ = chat
    prompt = script('call:weather:{"city": 7} then reply')
    execution = finished(worker, "llm-tools", {"script": prompt})
    assert execution["status"] == "completed", execution
    assert "llm.invalid_arguments" in execution["output"]["said"]
    [call] = node(execution, "ask")["output"]["tool_calls"]
    assert call["error"]["message"].endswith("at city: 7 is not of type 'string'")
    assert not [t for t in server.tool_requests if execution["execution_id"] in str(t)]


def test_a_model_calling_tools_past_the_round_limit_fails_the_node_naming_it(
    worker: WorkerProcess,
) -> None:
    execution = finished(worker, "llm-tools", {"script": script('call:weather:{"city": "Oslo"}')})
    assert execution["status"] == "failed", execution
    error = execution["error"]
    assert (error["type"], error["node_id"]) == ("llm.too_many_tool_rounds", "ask")
    assert "after 2 rounds of tool calls" in error["message"]


def test_a_streamed_answer_and_its_line_in_the_nodes_logs(worker: WorkerProcess) -> None:
    execution = finished(worker, "llm-tools", {"script": script("text:Hello, Ada")})
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"said": "Hello, Ada"}
    assert node(execution, "ask")["output"]["tool_calls"] == []
    execution_id = execution["execution_id"]
    logs = until(
        lambda: worker.api.get(f"/executions/{execution_id}/logs").body.get("logs"),
        "the llm node's log",
    )
    [run] = logs
    [line] = run["lines"]
    assert (run["node_id"], line["level"]) == ("ask", "info")
    assert line["message"].startswith("streamed answer: 5 chunks, the first text after")
