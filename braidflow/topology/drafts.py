"""Drafting a workflow definition from a sentence: what the model is told, and the rounds.

A model is asked for a definition, given the format's JSON Schema, the node kinds with their
params schemas, and the deployed workflows and event types. Its answer is validated with
braidflow's own validation; the problems go back to it, until the answer is valid or
`ROUNDS` answers were given. The question itself is the caller's (`Ask`), so this module
stays free of I/O (the worker asks through an `llm` connection, docs/drafts.md).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from braidflow.topology import Problem, Workflow, definition_schema, validate_text
from braidflow.topology.kinds import KINDS
from braidflow.topology.kinds.classify import labels_of
from braidflow.topology.model import EventTrigger

ROUNDS = 3
"""How many answers a draft asks for before it gives up on a valid one."""

MAX_ROUNDS = 10
"""The most rounds a request may ask for."""

INSTRUCTIONS = "You draft braidflow workflow definitions."
"""The system message's first line (the test server and dev mode's stand-in model know a
draft by it)."""

DECLINE = "CANNOT DRAFT:"
"""How a model's answer starts when it says it will not draft, and why: the draft ends there
and the caller is shown the model's words (problems sent back would not change them)."""

Ask = Callable[[str, str], Awaitable[str]]
"""Asks the model: (system message, prompt) -> the answer's text."""

_FENCE = re.compile(r"```(?:ya?ml|json)?[ \t]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Known:
    """What the model is told exists: the deployed workflows (id -> one line about each) and
    the event types their triggers and wait_event nodes name."""

    workflows: Mapping[str, str] = field(default_factory=dict)
    event_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Round:
    """One answer of the model: the definition text read out of it and its problems."""

    text: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Draft:
    """The rounds of a draft; `text` is the last answer, valid when it has no problems.
    `declined` is the model's reason when it answered that it will not draft (`DECLINE`);
    the rounds are then those before that answer."""

    rounds: tuple[Round, ...]
    declined: str | None = None

    @property
    def text(self) -> str:
        return self.rounds[-1].text if self.rounds else ""

    @property
    def valid(self) -> bool:
        return self.declined is None and bool(self.rounds) and not self.rounds[-1].problems


def known_of(workflows: Sequence[Workflow]) -> Known:
    """The ids, names and event types of deployed `workflows`, as the model is told them."""
    about: dict[str, str] = {}
    types: set[str] = set()
    for workflow in workflows:
        definition = workflow.definition
        about[definition.id] = definition.name or definition.description or ""
        for trigger in definition.triggers:
            if isinstance(trigger, EventTrigger):
                types.update(trigger.types)
        for node in definition.nodes:
            waited = node.params.get("type") if node.type == "wait_event" else None
            if isinstance(waited, str):
                types.add(waited)
    return Known(about, tuple(sorted(types)))


def system_message(known: Known) -> str:
    """Everything the model needs to know of braidflow, in one message."""
    kinds = {name: {"family": spec.family, "params": spec.params} for name, spec in KINDS.items()}
    workflows = "\n".join(f"- {id_}: {about}" for id_, about in sorted(known.workflows.items()))
    return "\n\n".join(
        [
            INSTRUCTIONS,
            "Answer with one workflow definition in YAML and nothing else. It must validate"
            " against the JSON Schema below, use only the node kinds listed, and keep every"
            " node reachable from a root. If you cannot draft it, answer with one line"
            f" that starts `{DECLINE}` and says why.",
            "JSON Schema of a definition:\n" + json.dumps(definition_schema()),
            "Node kinds (name: family and params schema):\n" + json.dumps(kinds),
            "Deployed workflows:\n" + (workflows or "(none)"),
            "Known event types:\n" + (", ".join(known.event_types) or "(none)"),
        ]
    )


def prompt(sentence: str, current: str | None, last: Round | None) -> str:
    """The question of a round: the sentence, the definition edited, the problems so far."""
    parts = [f"Request: {sentence}"]
    if current is not None:
        parts.append(
            "Change this deployed definition as the request says; keep its id:\n" + current
        )
    if last is not None:
        problems = "\n".join(f"- {p}" for p in last.problems)
        parts.append(
            "Your last answer:\n" + last.text + "\n\nbraidflow found these problems in it;"
            " answer with the whole definition corrected:\n" + problems
        )
    return "\n\n".join(parts)


def definition_text(answer: str) -> str:
    """The definition in a model's answer: the first fenced block, else the whole text."""
    fenced = _FENCE.search(answer)
    return (fenced.group(1) if fenced else answer).strip() + "\n"


def problems_of(text: str) -> tuple[str, ...]:
    """braidflow's validation of a drafted text, one line per problem."""
    found: list[Problem] = validate_text(text.encode())
    return tuple(str(p) for p in found)


async def draft(
    ask: Ask,
    sentence: str,
    known: Known,
    *,
    current: str | None = None,
    rounds: int = ROUNDS,
) -> Draft:
    """Ask for a definition until one is valid or `rounds` answers were given."""
    system = system_message(known)
    done: list[Round] = []
    while len(done) < rounds:
        answer = await ask(system, prompt(sentence, current, done[-1] if done else None))
        if answer.lstrip().startswith(DECLINE):
            return Draft(tuple(done), answer.lstrip()[len(DECLINE) :].strip())
        text = definition_text(answer)
        done.append(Round(text, problems_of(text)))
        if not done[-1].problems:
            break
    return Draft(tuple(done))


def diff(before: str, after: str, name: str) -> str:
    """A unified diff of a definition's text, `name` on both sides."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"{name} (deployed)",
            f"{name} (drafted)",
        )
    )


def dry_run_answers(workflow: Workflow) -> dict[str, Any]:
    """The answers of a draft's dry run: a node of the agent library an empty output of its
    kind's shape, so later templates that read it resolve (a classify node its first label:
    an empty output would fail it); every other work node is left to its empty output."""
    answers: dict[str, Any] = {}
    for node_id, node in workflow.nodes.items():
        params = node.node.params
        model = {"model": params.get("model"), "usage": {}}
        if node.type == "classify" and labels_of(params):
            answers[node_id] = {"label": labels_of(params)[0], **model}
        elif node.type in _EMPTY_ANSWERS:
            answers[node_id] = {**_EMPTY_ANSWERS[node.type], **model}
        elif node.type == "email":
            answers[node_id] = {"message_id": "", "accepted": [], "refused": {}}
    return answers


_EMPTY_ANSWERS: dict[str, dict[str, Any]] = {
    "llm": {"answer": "", "finish_reason": "stop"},
    "extract": {"fields": {}},
    "summarize": {"summary": ""},
}
