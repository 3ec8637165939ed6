"""A streamed chat completion (`stream: true`): server-sent events read as they come, their
chunks put together into the one `Completion` an unstreamed response would have given.

Pure: the client (`connectors/llm.py`) feeds the bytes it reads. The endpoint sends one
`data:` event per chunk (`chat.completion.chunk`: deltas of the text and of the tool calls),
then `data: [DONE]`; with `stream_options: {include_usage: true}` a last chunk carries the
usage and no choice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from braidflow.connectors.llm_answers import Completion, counted_usage, tool_calls_of
from braidflow.tasks import NodeFailure

DONE = "[DONE]"
"""The data of the event that ends the stream."""


class EventStream:
    """Server-sent events out of the bytes of a response, fed as they arrive: `feed` gives
    the data of each event completed (its `data:` lines joined by newlines)."""

    def __init__(self) -> None:
        self._pending = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes | str) -> list[str]:
        text = chunk if isinstance(chunk, str) else chunk.decode("utf-8", errors="replace")
        self._pending += text
        lines = self._pending.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop()
        events: list[str] = []
        for line in lines:
            if line == "":
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
            elif line.startswith("data:"):
                self._data.append(line[5:].removeprefix(" "))
            # Comments (`:`), `event:`, `id:` and `retry:` lines say nothing a completion needs.
        return events

    def close(self) -> list[str]:
        """The data of an event the stream ended without a blank line after."""
        last = self.feed("\n\n") if self._pending or self._data else []
        return last


class Assembly:
    """The chunks of one streamed completion, added up: text, tool calls, usage, model."""

    def __init__(self) -> None:
        self.chunks = 0
        self.done = False
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._usage: dict[str, int] = {}
        self._model: str | None = None
        self._finish: str | None = None

    @property
    def text(self) -> str:
        """The answer's text so far."""
        return "".join(self._text)

    def add(self, data: str, where: str) -> None:
        """One event's data: a chunk, or `[DONE]`; NodeFailure for an error or not JSON."""
        if data.strip() == DONE:
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise NodeFailure(
                "llm.invalid_response", f"{where}: a streamed chunk is not JSON: {data[:200]}"
            ) from None
        if not isinstance(chunk, Mapping):
            raise NodeFailure("llm.invalid_response", f"{where}: a streamed chunk is not an object")
        if isinstance(error := chunk.get("error"), Mapping):
            raise NodeFailure(
                "llm.invalid_response",
                f"{where}: the stream ended in an error: {error.get('message')}",
            )
        self.chunks += 1
        if isinstance(chunk.get("model"), str):
            self._model = chunk["model"]
        if chunk.get("usage"):
            self._usage = counted_usage(chunk["usage"])
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            if isinstance(choice.get("finish_reason"), str):
                self._finish = choice["finish_reason"]
            delta = choice.get("delta")
            if isinstance(delta, Mapping):
                self._add_delta(delta)

    def _add_delta(self, delta: Mapping[str, Any]) -> None:
        if isinstance(delta.get("content"), str):
            self._text.append(delta["content"])
        if isinstance(delta.get("refusal"), str):
            self._refusal.append(delta["refusal"])
        calls = delta.get("tool_calls")
        for part in calls if isinstance(calls, list) else ():
            if not isinstance(part, Mapping):
                continue
            index = part.get("index", len(self._calls))
            call = self._calls.setdefault(
                index if isinstance(index, int) else len(self._calls),
                {"id": None, "function": {"name": "", "arguments": ""}},
            )
            if isinstance(part.get("id"), str):
                call["id"] = part["id"]
            function = part.get("function")
            if isinstance(function, Mapping):
                for field in ("name", "arguments"):
                    if isinstance(function.get(field), str):
                        call["function"][field] += function[field]

    def completion(self, where: str) -> Completion:
        """The completion the chunks make; NodeFailure when they hold no answer."""
        calls = tool_calls_of([self._calls[i] for i in sorted(self._calls)])
        if not self._text and not calls:
            if self._refusal:
                raise NodeFailure(
                    "llm.refused", f"{where}: the model refused: {''.join(self._refusal)}"
                )
            if self.chunks == 0:
                raise NodeFailure("llm.invalid_response", f"{where}: the stream held no chunk")
        return Completion(self.text, self._model, self._usage, self._finish, calls)
