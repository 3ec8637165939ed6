"""The tools of an `llm` node (`params.tools`): what the endpoint is told of them, how a call
the model makes becomes a run of another work kind, and what goes back to the model and into
the node's output.

Pure: the client (`connectors/llm.py`) runs the calls through the executor's kinds table. An
http tool is a run of the `http` kind; a kind tool a run of its kind with the arguments
added to its fixed `params`. Arguments that break the tool's `parameters`, an unknown tool,
and a run that fails all go back to the model as the tool's error: the model may mend its
call, and the node goes on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import jsonschema

from braidflow.topology.kinds.llm import SECRET_REFERENCE, URL_ARGUMENT, kind_params_problem
from braidflow.topology.secret_references import escape_dollars

MODEL_RESULT_CHARS = 16_000
"""Characters of a tool's result (as JSON) the model is sent; the rest is cut."""

KEPT_RESULT_CHARS = 2_000
"""Characters of a tool's result (as JSON) the node's output keeps of each call."""

KEPT_CALLS = 50
"""Calls the node's output lists; past that it counts them (`tool_calls_left_out`)."""

_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}


def definitions(tools: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The `tools` of the request: each a function with its description and parameters."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool["description"],
                "parameters": tool.get("parameters", _NO_ARGUMENTS),
            },
        }
        for tool in tools
    ]


def call_arguments(
    arguments: str, tool: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """The arguments of a call (its JSON text) and what is wrong with them (None: nothing)."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        return None, f"the arguments are not JSON: {exc}"
    if not isinstance(value, dict):
        return None, "the arguments are not a JSON object"
    if named := SECRET_REFERENCE.search(json.dumps(value, ensure_ascii=False)):
        # The kinds that resolve references (http, fetch_page) would put its value in.
        return value, f"the arguments name a secret, {named.group()}: a tool's arguments are data"
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(tool.get("parameters", _NO_ARGUMENTS)).iter_errors(value)
    )
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path)
        return (
            value,
            f"the arguments break the tool's parameters{' at ' + at if at else ''}: {error.message}",
        )
    return value, None


def work(
    tool: Mapping[str, Any], arguments: Mapping[str, Any]
) -> tuple[str, dict[str, Any], str | None]:
    """The work kind a call runs, its params, and why they cannot run (None: they can)."""
    http = tool.get("http")
    if isinstance(http, Mapping):
        return "http", http_params(http, arguments), None
    kind = str(tool["kind"])
    # The tool's own params win: the model fills in the arguments, not what the author fixed.
    params = {**arguments, **tool.get("params", {})}
    return kind, params, kind_params_problem(kind, params)


def http_params(http: Mapping[str, Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """An http node's params for a call: the url's `{name}`s filled in, the other arguments
    in the query or a JSON body."""
    method = str(http.get("method", "GET"))
    in_url = set(URL_ARGUMENT.findall(str(http["url"])))
    # The url's and headers' `${secrets.NAME}` are the author's; the arguments are data, their
    # `$` doubled as the http kind reads `$$` (quoted into the url, a `$` is `%24`).
    url = URL_ARGUMENT.sub(
        lambda m: quote(_text(arguments.get(m.group(1), "")), safe=""),
        http["url"],
    )
    rest = escape_dollars({k: v for k, v in arguments.items() if k not in in_url})
    params: dict[str, Any] = {"method": method, "url": url}
    if http.get("headers"):
        params["headers"] = dict(http["headers"])
    send = http.get("send", "query" if method in ("GET", "DELETE") else "body")
    if send == "body":
        params["body"] = rest
    elif rest:
        params["query"] = {k: _text(v) for k, v in rest.items()}
    return params


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def result_for_model(kind: str, output: Any) -> Any:
    """What of a run's output the model reads: an http call's status and body, else all."""
    if kind == "http" and isinstance(output, Mapping):
        return {"status": output.get("status"), "body": output.get("body")}
    return output


def tool_message(call_id: str, result: Any, error: Mapping[str, str] | None) -> dict[str, str]:
    """The `role: tool` message answering one call: its result, or `{"error": ...}`."""
    content = _cut(
        json.dumps({"error": error} if error else result, ensure_ascii=False), MODEL_RESULT_CHARS
    )
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def kept_call(
    round_: int, name: str, arguments: Any, result: Any, error: Mapping[str, str] | None
) -> dict[str, Any]:
    """One call as the node's output lists it, its result cut to `KEPT_RESULT_CHARS`."""
    kept: dict[str, Any] = {"round": round_, "name": name, "arguments": _bounded(arguments)}
    if error is not None:
        kept["error"] = dict(error)
    else:
        kept["result"] = _bounded(result)
    return kept


def _bounded(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False)
    return value if len(text) <= KEPT_RESULT_CHARS else _cut(text, KEPT_RESULT_CHARS)


def _cut(text: str, limit: int) -> str:
    return (
        text
        if len(text) <= limit
        else f"{text[:limit]}... (cut: {len(text) - limit:,} more characters)"
    )


def tool_key(idempotency_key: str, round_: int, index: int) -> str:
    """The idempotency key of the `index`-th call (from 1) of round `round_`: the node's key
    and where the call stands, so a run repeated after a crash repeats the same keys."""
    return f"{idempotency_key}.tool-{round_}-{index}"
