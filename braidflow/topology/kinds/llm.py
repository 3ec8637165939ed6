"""The `llm` node kind. A chat completion an executor asks of an OpenAI-compatible endpoint."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema

from braidflow.topology.kinds.spec import KindSpec, schema_problem
from braidflow.topology.loading import Problem

CONNECTION_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
"""What a connection's name may be (the keys of the worker's connections file)."""

TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"
"""What a tool's name may be (OpenAI's rule for a function's name)."""

DEFAULT_TOOL_ROUNDS = 5
"""How many rounds of tool calls an llm node answers when it sets no `max_tool_rounds`."""

SECRET_REFERENCE = re.compile(r"\$\{secrets\.[A-Za-z_][A-Za-z0-9_]*\}")
"""A secret's hole, `${secrets.NAME}`: the one `${` a tool may hold, resolved at the call."""

URL_ARGUMENT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""A placeholder in an http tool's url, `{city}`: the argument of that name, percent-encoded."""

_HTTP_TOOL: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "description": "an HTTP request the call makes",
    "properties": {
        "method": {
            "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"],
            "description": "GET (default)",
        },
        "url": {"type": "string", "minLength": 1, "description": "may name arguments: {city}"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "send": {
            "enum": ["query", "body"],
            "description": "where the other arguments go: query (GET, DELETE) or a JSON body",
        },
    },
}

TOOL: dict[str, Any] = {
    "type": "object",
    "required": ["name", "description"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": TOOL_NAME},
        "description": {"type": "string", "minLength": 1, "description": "what the model reads"},
        "parameters": {
            "type": "object",
            "description": "JSON Schema of the call's arguments (default: none)",
        },
        "http": _HTTP_TOOL,
        "kind": {"type": "string", "description": "a work kind run with the arguments as params"},
        "params": {"type": "object", "description": "a kind tool's fixed params"},
    },
    "oneOf": [{"required": ["http"]}, {"required": ["kind"]}],
}

CALL_PARAMS: dict[str, Any] = {
    "connection": {
        "type": "string",
        "pattern": CONNECTION_NAME,
        "description": "the endpoint and its key, named in the worker's connections file",
    },
    "model": {"type": "string", "minLength": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "max_tokens": {"type": "integer", "minimum": 1},
}
"""The params of a model call every model kind has (`llm` and the agent library's)."""

PARAMS: dict[str, Any] = {
    "type": "object",
    "required": ["connection", "model", "prompt"],
    "additionalProperties": False,
    "properties": {
        **CALL_PARAMS,
        "prompt": {"type": "string", "minLength": 1, "description": "the user message; ${...}"},
        "system": {"type": "string", "description": "the system message; may use ${...}"},
        "output": {
            "oneOf": [
                {"enum": ["text", "json"]},
                {"type": "object", "description": "JSON Schema (2020-12) the answer must satisfy"},
            ],
            "description": "text (default), json, or a JSON Schema the answer must satisfy",
        },
        "tools": {
            "type": "array",
            "minItems": 1,
            "items": TOOL,
            "description": "what the model may call: http endpoints or other work kinds",
        },
        "max_tool_rounds": {
            "type": "integer",
            "minimum": 1,
            "maximum": 50,
            "description": f"rounds of tool calls answered (default: {DEFAULT_TOOL_ROUNDS})",
        },
        "stream": {"type": "boolean", "description": "ask for server-sent events (default: no)"},
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    output = params.get("output")
    if isinstance(output, Mapping) and (problem := schema_problem(output)):
        yield Problem(where, f"params.output: {problem}")
    if "max_tool_rounds" in params and "tools" not in params:
        yield Problem(where, "params.max_tool_rounds: the node has no tools")
    tools = params.get("tools")
    if not isinstance(tools, list):
        return
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            continue
        name = tool["name"]
        at = f"params.tools[{index}] ({name})"
        if name in seen:
            yield Problem(where, f"{at}: a second tool named {name!r}")
        seen.add(name)
        yield from (Problem(where, f"{at}: {p}") for p in tool_problems(tool))


def tool_problems(tool: Mapping[str, Any]) -> Iterator[str]:
    """What is wrong with one tool a JSON Schema cannot say: its `parameters`, its kind, the
    arguments its url names, a `${...}` where nothing renders it."""
    for field, value in tool.items():
        # Only a secret's hole has a reader: the executor, where the call's kind resolves it.
        secrets_read = field in ("http", "params")
        for text in _strings(value):
            left = SECRET_REFERENCE.sub("", text) if secrets_read else text
            if "${" in left:
                yield (
                    f"{field}: {text!r}: a tool is not templated; `${{...}}` would be sent as"
                    " written (a `${secrets.NAME}` may stand in its http or params)"
                )
                break
    parameters = tool.get("parameters", {"type": "object"})
    if isinstance(parameters, Mapping):
        if problem := schema_problem(parameters):
            yield f"parameters: {problem}"
        elif parameters.get("type") != "object":
            yield "parameters: the arguments must be an object (`type: object`)"
    named = arguments_named(parameters)
    http = tool.get("http")
    if isinstance(http, Mapping) and isinstance(http.get("url"), str):
        for argument in URL_ARGUMENT.findall(http["url"]):
            if argument not in named:
                yield f"http.url: {{{argument}}} is not one of the tool's parameters"
    kind = tool.get("kind")
    if isinstance(kind, str):
        yield from _kind_problems(kind, tool.get("params", {}), named)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _kind_problems(kind: str, fixed: Any, named: set[str]) -> Iterator[str]:
    # Imported here: the kinds table imports this module.
    from braidflow.topology.kinds import KINDS, WORK_TYPES

    spec = KINDS.get(kind)
    # A task node's handler and input are not params a model's arguments could fill in.
    usable = sorted(WORK_TYPES - {"task"})
    if spec is None or kind not in usable:
        yield f"kind: {kind!r} is not a work kind a tool may run (one of {', '.join(usable)})"
        return
    allowed = spec.params.get("properties")
    if spec.params.get("additionalProperties") is False and isinstance(allowed, Mapping):
        given = sorted({*(fixed if isinstance(fixed, Mapping) else ()), *named} - set(allowed))
        if given:
            yield (
                f"a {kind} node has no params {', '.join(given)}"
                f" (its params: {', '.join(sorted(allowed))})"
            )


def arguments_named(parameters: Any) -> set[str]:
    """The arguments a tool's `parameters` schema names."""
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    return set(properties) if isinstance(properties, Mapping) else set()


def kind_params_problem(kind: str, params: Mapping[str, Any]) -> str | None:
    """Why `params` cannot run as a `kind` node's (its schema, its check), or None."""
    from braidflow.topology.kinds import KINDS

    spec = KINDS[kind]
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(spec.params).iter_errors(params)
    )
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path)
        return f"{at + ': ' if at else ''}{error.message}"
    if spec.check is not None:
        for problem in spec.check({"type": kind, "params": params}, params, "tool"):
            return problem.message
    return None


SPEC = KindSpec(
    "llm",
    "work",
    PARAMS,
    templated=("prompt", "system"),
    error_edges=True,
    check=_check,
)
