"""The model kinds of the agent library: `classify`, `extract` and `summarize` nodes are `llm`
questions of a fixed shape, asked through the same connections and client (`connectors/llm.py`).

Each kind turns its node's request into an llm node's (`question`): the instructions go in
the system message and the node's text, alone, is the user message; `classify` and `extract`
ask for a JSON Schema the client checks and asks again when broken, so a label is always one
of the node's labels and the fields always satisfy the node's schema. The answer is then
reshaped (`shaped`) into the kind's output; `usage`, `model` and `cost` are the llm node's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from braidflow.connectors.llm import LlmClient
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretScope
from braidflow.tasks import NodeFailure

MODEL_KINDS = ("classify", "extract", "summarize")
"""The kinds asked as llm questions."""
_PLAIN = ("connection", "model", "temperature", "max_tokens")


def question(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The llm node request that asks what a `kind` node asks."""
    asked = {name: params[name] for name in _PLAIN if name in params}
    more = params.get("instructions")
    if kind == "classify":
        system, output = _classify(params["labels"])
    elif kind == "extract":
        schema = params["schema"]
        system = (
            "Extract the fields this JSON Schema describes from the text you are given."
            " Leave out a field the text does not give unless the schema requires it."
            f" Answer with only the JSON object.\nSchema: {json.dumps(schema)}"
        )
        output = schema
    else:
        system, output = _summarize(params.get("max_words"), params.get("style")), "text"
    if more:
        system = f"{system}\n{more}"
    return {**asked, "system": system, "prompt": params["text"], "output": output}


def _classify(labels: Any) -> tuple[str, dict[str, Any]]:
    names = list(labels)
    if isinstance(labels, Mapping):
        listed = "\n".join(f"- {name}: {labels[name]}" for name in names)
    else:
        listed = "\n".join(f"- {name}" for name in names)
    system = (
        "Classify the text you are given with exactly one of these labels:\n"
        f'{listed}\nAnswer with only the JSON object {{"label": "<the label>"}}.'
    )
    output = {
        "type": "object",
        "required": ["label"],
        "additionalProperties": False,
        "properties": {"label": {"enum": names}},
    }
    return system, output


def _summarize(max_words: Any, style: Any) -> str:
    asked = "Summarize the text you are given"
    if max_words is not None:
        asked += f" in at most {max_words} words"
    if style:
        asked += f", written as {style}"
    return f"{asked}. Answer with only the summary."


def shaped(kind: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    """A `kind` node's output out of the llm node's output for its question."""
    value = answer["answer"]
    if kind == "classify":
        shape: dict[str, Any] = {"label": value["label"]}
    elif kind == "extract":
        shape = {"fields": value}
    else:
        shape = {"summary": value.strip()}
    kept = {name: answer[name] for name in ("model", "usage", "cost") if name in answer}
    return {**shape, **kept}


class ModelKind:
    """Runs one model kind's nodes through `llm` (a WorkRun for the executor)."""

    def __init__(self, llm: LlmClient, kind: str) -> None:
        if kind not in MODEL_KINDS:
            raise ValueError(f"not a model kind of the agent library: {kind!r}")
        self._llm = llm
        self._kind = kind

    async def __call__(self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog) -> Any:
        params = request.input
        if not isinstance(params, Mapping):
            raise NodeFailure(
                "InvalidRequest", f"{self._kind} node input is not an object: {params!r}"
            )
        missing = [n for n in _required(self._kind) if n not in params]
        if missing:
            raise NodeFailure(
                "InvalidRequest", f"{self._kind} node input lacks {', '.join(missing)}"
            )
        asked = replace(request, input=question(self._kind, params))
        return shaped(self._kind, await self._llm.run(asked, secrets, node_log))


def _required(kind: str) -> tuple[str, ...]:
    own = {"classify": ("labels",), "extract": ("schema",), "summarize": ()}[kind]
    return ("connection", "model", "text", *own)
