"""The `llm` node as definitions and the engine see it: its params are checked at
validation, and its task request carries the rendered prompt and the connection's name only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from engine_driver import of_type, workflow

from braidflow.cli import main
from braidflow.engine import StartExecution, TaskRequest, step
from braidflow.engine.messages import NodeError, NodeFailed, RedriveNode
from braidflow.engine.step import StepResult
from braidflow.topology import DefinitionError, load_workflow

T0 = 1_795_000_000_000


def definition(**params: Any) -> str:
    shown = ", ".join(f"{k}: {v}" for k, v in params.items())
    return f"""
id: ask
nodes:
  - {{id: ask, type: llm, params: {{{shown}}}, timeout: 20s}}
  - {{id: done, type: end, params: {{output: {{a: "${{nodes.ask.output.answer}}"}}}}}}
edges:
  - {{from: ask, to: done}}
"""


INPUT = {"text": "x", "team": "billing"}
BASE = {"connection": "openai", "model": "gpt-4o-mini", "prompt": '"Label: ${input.text}"'}


def problems(**params: Any) -> str:
    with pytest.raises(DefinitionError) as refused:
        load_workflow(definition(**params))
    return str(refused.value)


def test_the_task_request_holds_the_rendered_messages_and_the_connections_name() -> None:
    text = definition(
        **BASE, system='"Tickets of ${input.team}"', temperature=0.3, max_tokens=50, output="json"
    )
    result = step(workflow(text), None, StartExecution("s", "ex", T0, "ask", 1, INPUT))
    [request] = of_type(result.outgoing, TaskRequest)
    assert (request.kind, request.timeout_ms, request.handler) == ("llm", 20_000, None)
    assert request.input == {
        "connection": "openai",
        "model": "gpt-4o-mini",
        "prompt": "Label: x",
        "system": "Tickets of billing",
        "output": "json",
        "temperature": 0.3,
        "max_tokens": 50,
    }


def test_text_is_the_default_output_and_unset_options_are_left_out() -> None:
    result = step(
        workflow(definition(**BASE)), None, StartExecution("s", "ex", T0, "ask", 1, INPUT)
    )
    [request] = of_type(result.outgoing, TaskRequest)
    assert request.input["output"] == "text" and request.input["system"] is None
    assert "temperature" not in request.input and "max_tokens" not in request.input


def test_the_connection_model_and_prompt_are_required() -> None:
    message = problems(model="m", prompt="hi")
    assert "node 'ask'" in message and "connection" in message


def test_an_output_schema_that_is_no_json_schema_is_refused_naming_the_field() -> None:
    message = problems(**BASE, output="{type: object, properties: {x: {type: texte}}}")
    assert "params.output: invalid JSON Schema at properties.x.type" in message


def test_an_output_that_is_neither_text_json_nor_a_schema_is_refused() -> None:
    assert "output" in problems(**BASE, output="xml")


def test_a_prompt_may_not_name_a_secret() -> None:
    message = problems(**{**BASE, "prompt": '"key ${secrets.OPENAI_API_KEY}"'})
    assert "params.prompt" in message and "secrets.OPENAI_API_KEY" in message


def test_a_temperature_past_two_is_refused() -> None:
    assert "temperature" in problems(**BASE, temperature=3)


def test_a_redrive_may_patch_the_prompt_never_the_connection() -> None:
    wf = workflow(definition(**BASE))
    started = step(wf, None, StartExecution("s", "ex", T0, "ask", 1, INPUT))
    [request] = of_type(started.outgoing, TaskRequest)
    error = NodeError("llm.5xx", "down")
    state = step(wf, started.state, NodeFailed("f", "ex", T0 + 1, "ask", 1, error)).state

    def redriven(patched: Any) -> StepResult:
        return step(wf, state, RedriveNode("r", "ex", T0 + 2, "ask", "ops", patched))

    reworded = {**request.input, "prompt": "Label, briefly: x"}
    [sent] = of_type(redriven(reworded).outgoing, TaskRequest)
    assert sent.input == reworded
    elsewhere = redriven({**request.input, "connection": "finance-openai"})
    assert elsewhere.outgoing == ()
    assert elsewhere.ignored == "a patched input of node 'ask' must keep its connection, 'openai'"


def test_a_dry_run_shows_the_connection_and_model_asked(tmp_path: Path) -> None:
    path = tmp_path / "ask.yaml"
    path.write_text(definition(**BASE))
    answers = tmp_path / "answers.yaml"
    answers.write_text("ask: {answer: bug, model: gpt-4o-mini, usage: {total_tokens: 9}}\n")
    given = ["--input", json.dumps(INPUT), "--answers", str(answers)]
    result = CliRunner().invoke(main, ["dry-run", str(path), *given])
    assert result.exit_code == 0, result.output
    assert "-> llm openai gpt-4o-mini input {" in result.output
    assert 'output: {"a": "bug"}' in result.output


WEATHER = (
    "{name: weather, description: The weather in a city.,"
    " parameters: {type: object, required: [city], properties: {city: {type: string}}},"
    ' http: {url: "https://weather.example/now/{city}"}}'
)
PAGE = (
    "{name: page, description: A page's title., kind: fetch_page, params: {select: {t: h1}},"
    " parameters: {type: object, properties: {url: {type: string}}}}"
)


def test_tools_and_streaming_go_to_the_executor_as_declared() -> None:
    text = definition(**BASE, tools=f"[{WEATHER}, {PAGE}]", max_tool_rounds=3, stream="true")
    result = step(workflow(text), None, StartExecution("s", "ex", T0, "ask", 1, INPUT))
    [request] = of_type(result.outgoing, TaskRequest)
    assert [t["name"] for t in request.input["tools"]] == ["weather", "page"]
    assert request.input["tools"][1]["params"] == {"select": {"t": "h1"}}
    assert (request.input["max_tool_rounds"], request.input["stream"]) == (3, True)


def test_each_wrong_tool_is_named_by_node_and_tool() -> None:
    twice = WEATHER.replace("weather,", "page,")
    unknown = PAGE.replace("kind: fetch_page", "kind: fetch_pages")
    bad_schema = WEATHER.replace("{type: string}", "{type: strng}")
    lost = WEATHER.replace("now/{city}", "now/{town}")
    message = problems(**BASE, tools=f"[{PAGE}, {twice}, {unknown}, {bad_schema}, {lost}]")
    assert "node 'ask': params.tools[1] (page): a second tool named 'page'" in message
    assert (
        "params.tools[2] (page): kind: 'fetch_pages' is not a work kind a tool may run" in message
    )
    assert (
        "params.tools[3] (weather): parameters: invalid JSON Schema at properties.city.type"
        in message
    )
    assert (
        "params.tools[4] (weather): http.url: {town} is not one of the tool's parameters" in message
    )


def test_a_tool_runs_one_thing_with_params_that_kind_has() -> None:
    both = WEATHER.replace("http:", "kind: code, http:")
    assert "tools" in problems(**BASE, tools=f"[{both}]")
    stray = PAGE.replace("params: {select: {t: h1}}", "params: {select: {t: h1}, depth: 2}")
    message = problems(**BASE, tools=f"[{stray}]")
    assert "params.tools[0] (page): a fetch_page node has no params depth" in message
    task = PAGE.replace("kind: fetch_page", "kind: task")
    assert "kind: 'task' is not a work kind a tool may run" in problems(**BASE, tools=f"[{task}]")
    listed = WEATHER.replace("type: object, required", "type: array, required")
    assert "the arguments must be an object" in problems(**BASE, tools=f"[{listed}]")


def test_a_round_limit_without_tools_is_refused() -> None:
    assert "params.max_tool_rounds: the node has no tools" in problems(**BASE, max_tool_rounds=2)


def test_a_tool_holds_no_template_but_may_name_a_secret_where_its_call_reads_it() -> None:
    keyed = WEATHER.replace("http: {", 'http: {headers: {Authorization: "Bearer ${secrets.WX}"}, ')
    load_workflow(definition(**BASE, tools=f"[{keyed}]"))
    templated = WEATHER.replace("The weather in a city.", '"The weather in ${input.team}."')
    message = problems(**BASE, tools=f"[{templated}]")
    assert "params.tools[0] (weather): description: 'The weather in ${input.team}.':" in message
    assert "a tool is not templated" in message
