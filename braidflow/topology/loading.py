"""Reading definition text (YAML or JSON) into plain data, and plain data into the model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from braidflow.topology.durations import parse_duration
from braidflow.topology.model import (
    Definition,
    Edge,
    EventTrigger,
    Node,
    Retry,
    ScheduleTrigger,
    Trigger,
    WebhookTrigger,
)

MAX_DEFINITION_BYTES = 1024 * 1024
MAX_NODES = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition, and where: `node 'x'`, `edge 'a -> b'`, `line 3, column 5`."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class DefinitionError(ValueError):
    """A definition that cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def definition_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of the definition format."""
    text = resources.files("braidflow.topology").joinpath("definition.schema.json").read_text()
    return json.loads(text)


_BOOL_TAG = "tag:yaml.org,2002:bool"


class _DefinitionLoader(yaml.SafeLoader):
    """Safe YAML whose mapping keys `on`, `off`, `yes`, `no` stay text.

    YAML 1.1 reads them as booleans, which would turn `retry: {on: [Timeout]}`
    into `{true: [...]}`. Values keep YAML 1.1 meaning, as before.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        for key, _ in node.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.tag == _BOOL_TAG
                and key.value.lower() not in ("true", "false")
            ):
                key.tag = "tag:yaml.org,2002:str"
        return super().construct_mapping(node, deep=deep)


def parse_text(text: str | bytes) -> Any:
    """Parse YAML or JSON (JSON is YAML, but its errors read better from the JSON parser)."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionError(
            [Problem("definition", f"is {size} bytes, over the limit of {MAX_DEFINITION_BYTES}")]
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DefinitionError([Problem("definition", f"is not UTF-8: {exc}")]) from None
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise DefinitionError([Problem(where, f"invalid JSON: {exc.msg}")]) from None
    try:
        return yaml.load(text, Loader=_DefinitionLoader)  # a SafeLoader: no object tags
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "definition"
        what = " ".join(filter(None, [exc.context, exc.problem]))
        raise DefinitionError([Problem(where, f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem("definition", f"invalid YAML: {exc}")]) from None


def declared_variables(doc: Mapping[str, Any]) -> frozenset[str]:
    """The names under `variables`; none when it is not a mapping (the schema says so)."""
    variables = doc.get("variables")
    return frozenset(variables) if isinstance(variables, Mapping) else frozenset()


def _retry(raw: Mapping[str, Any] | None) -> Retry | None:
    if raw is None:
        return None
    return Retry(
        max_attempts=raw.get("max_attempts", 1),
        backoff=raw.get("backoff", "fixed"),
        initial_ms=parse_duration(raw.get("initial", "1s")),
        max_ms=parse_duration(raw["max"]) if "max" in raw else None,
        jitter=raw.get("jitter", False),
        on=tuple(raw["on"]) if "on" in raw else None,
    )


def _trigger(raw: Mapping[str, Any]) -> Trigger:
    if "event" in raw:
        event = raw["event"]
        return EventTrigger(tuple(event["types"]), event.get("when"), event.get("department"))
    if "webhook" in raw:
        return WebhookTrigger(raw["webhook"]["name"])
    schedule = raw["schedule"]
    return ScheduleTrigger(schedule["cron"], schedule.get("timezone", "UTC"))


def _timeout_ms(raw: Mapping[str, Any]) -> int | None:
    """A node's timeout; a wait_event may give it in params instead (validation forbids both)."""
    if "timeout" in raw:
        return parse_duration(raw["timeout"])
    params = raw.get("params") or {}
    if raw["type"] == "wait_event" and "timeout" in params:
        return parse_duration(params["timeout"])
    return None


def build_edge(raw: Mapping[str, Any]) -> Edge:
    """One edge of the document as the model has it."""
    return Edge(
        raw["from"],
        raw["to"],
        raw.get("when"),
        raw.get("default", False),
        raw.get("timeout", False),
        raw.get("on_error", False),
    )


def build_definition(doc: Mapping[str, Any]) -> Definition:
    """Turn a document that passed the JSON Schema into the typed model."""
    settings = doc.get("settings") or {}
    return Definition(
        id=doc["id"],
        name=doc.get("name"),
        description=doc.get("description"),
        department=doc.get("department"),
        input_schema=doc.get("input"),
        variables=doc.get("variables") or {},
        timeout_ms=parse_duration(settings["timeout"]) if "timeout" in settings else None,
        triggers=tuple(_trigger(t) for t in doc.get("triggers") or ()),
        on_failure=settings.get("on_failure", "fail"),
        nodes=tuple(
            Node(
                id=n["id"],
                type=n["type"],
                params=n.get("params") or {},
                name=n.get("name"),
                timeout_ms=_timeout_ms(n),
                retry=_retry(n.get("retry")),
            )
            for n in doc["nodes"]
        ),
        edges=tuple(build_edge(e) for e in doc["edges"]),
    )
