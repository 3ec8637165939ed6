"""What an `llm` node asks of a chat-completions endpoint and how it reads the answer.

Pure: the client (`connectors/llm.py`) does the I/O. `output` is the node's param: `text`,
`json`, or a JSON Schema the answer must satisfy. An answer that is not what `output` asks
for gets a `problem`, which the client sends back to the model in a message of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import jsonschema

from braidflow.tasks import NodeFailure

USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")
_PROBLEM_CHARS = 500


def messages(system: str | None, prompt: str) -> list[dict[str, str]]:
    """The conversation's opening: the system message, when there is one, then the prompt."""
    opening = [{"role": "system", "content": system}] if system else []
    return [*opening, {"role": "user", "content": prompt}]


def response_format(output: Any) -> dict[str, Any] | None:
    """The endpoint's structured-output option for `output`; None for text."""
    if output == "json":
        return {"type": "json_object"}
    if isinstance(output, Mapping):
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": output}}
    return None


def read_answer(content: str, output: Any) -> tuple[Any, str | None]:
    """The answer as the node's output gives it (text, or the parsed JSON), and what is
    wrong with it (None: nothing)."""
    if output == "text" or output is None:
        return content, None
    try:
        value = json.loads(_unfenced(content))
    except json.JSONDecodeError as exc:
        return None, f"the answer is not JSON: {exc}"
    if not isinstance(output, Mapping):
        return value, None
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(output).iter_errors(value)
    )
    if error is None:
        return value, None
    at = "/".join(str(p) for p in error.absolute_path)
    return value, f"the answer breaks the output schema{' at ' + at if at else ''}: {error.message}"


def _unfenced(content: str) -> str:
    # Models without a structured-output option often wrap JSON in a Markdown fence.
    text = content.strip()
    if text.startswith("```") and text.endswith("```") and "\n" in text:
        return text[text.index("\n") + 1 : -3]
    return text


def asked_again(problem: str) -> str:
    """The message that asks for the answer again, saying what was wrong with the last one."""
    return (
        f"Your last answer cannot be used: {problem[:_PROBLEM_CHARS]}."
        " Answer again with only the corrected JSON."
    )


@dataclass(frozen=True, slots=True)
class Completion:
    """What one chat-completions response says: the answer's text, the model that gave it,
    the tokens counted (only those the endpoint reports), why the model stopped, and the
    tools it calls (`{id, type, function: {name, arguments}}`, arguments a JSON text)."""

    content: str
    model: str | None
    usage: dict[str, int]
    finish_reason: str | None
    tool_calls: tuple[dict[str, Any], ...] = ()


def completion(body: Any, where: str) -> Completion:
    """The completion a response body holds; NodeFailure when it holds none."""
    choices = body.get("choices") if isinstance(body, Mapping) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, Mapping) else None
    if not isinstance(message, Mapping):
        raise NodeFailure("llm.invalid_response", f"{where}: the response holds no message")
    calls = tool_calls_of(message.get("tool_calls"))
    content = message.get("content")
    if content is None and calls:
        content = ""
    if not isinstance(content, str):
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            raise NodeFailure("llm.refused", f"{where}: the model refused: {refusal}")
        raise NodeFailure("llm.invalid_response", f"{where}: the message holds no text")
    model = body.get("model")
    reason = first.get("finish_reason") if isinstance(first, Mapping) else None
    return Completion(
        content,
        model if isinstance(model, str) else None,
        counted_usage(body.get("usage")),
        reason if isinstance(reason, str) else None,
        calls,
    )


def counted_usage(usage: Any) -> dict[str, int]:
    """The token counts a response's `usage` reports, those it does not left out."""
    return {
        name: usage[name]
        for name in USAGE_FIELDS
        if isinstance(usage, Mapping) and type(usage.get(name)) is int
    }


def tool_calls_of(calls: Any) -> tuple[dict[str, Any], ...]:
    """The function calls of a message's `tool_calls`, as they go back to the endpoint in the
    assistant's message; an entry that is not a function call with a name is left out."""
    if not isinstance(calls, list):
        return ()
    found: list[dict[str, Any]] = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            continue
        arguments = function.get("arguments")
        found.append(
            {
                "id": str(call.get("id") or f"call_{len(found)}"),
                "type": "function",
                "function": {
                    "name": function["name"],
                    "arguments": arguments if isinstance(arguments, str) else "",
                },
            }
        )
    return tuple(found)


def added(usage: Mapping[str, int], more: Mapping[str, int]) -> dict[str, int]:
    """The tokens of two requests together; a count only one of them reports stays its own."""
    return {
        name: usage.get(name, 0) + more.get(name, 0)
        for name in USAGE_FIELDS
        if name in usage or name in more
    }


def retry_after_s(header: str | None, now_s: float, default_s: float) -> float:
    """The wait a 429's `Retry-After` asks for (seconds, or an HTTP date against `now_s`, the
    epoch); `default_s` when it has none or none readable."""
    if not header:
        return default_s
    try:
        return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(header).timestamp() - now_s, 0.0)
    except (TypeError, ValueError):
        return default_s
