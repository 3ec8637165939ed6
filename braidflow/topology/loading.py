"""Reading definition text (YAML or JSON) into plain data, and plain data into the model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from braidflow.topology.durations import parse_duration
from braidflow.topology.limits import (
    MAX_ALIAS_VALUES,
    MAX_DEFINITION_BYTES,
    MAX_DEPTH,
    LimitError,
    check_depth,
    depth_error,
    parse_json,
)
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


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition, and where: `node 'x'`, `edge 'a -> b'`, `line 3, column 5`."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class DefinitionError(ValueError):
    """A definition that cannot be used; `problems` lists every reason.

    `limit` is set when the definition is over one of the limits (braidflow.topology.limits).
    """

    def __init__(self, problems: list[Problem], limit: LimitError | None = None) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
        self.limit = limit

    @classmethod
    def over(cls, limit: LimitError) -> DefinitionError:
        """The error of a definition over `limit`."""
        return cls([Problem("definition", str(limit))], limit)


_BOOL_TAG = "tag:yaml.org,2002:bool"


class _DefinitionLoader(yaml.SafeLoader):
    """Safe YAML whose mapping keys `on`, `off`, `yes`, `no` stay text, within the limits.

    YAML 1.1 reads them as booleans, which would turn `retry: {on: [Timeout]}`
    into `{true: [...]}`. Values keep YAML 1.1 meaning, as before.
    Collections nest at most `MAX_DEPTH` deep, and aliases add at most
    `MAX_ALIAS_VALUES` values: both are refused while composing, before any
    expansion happens.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._alias_values = 0
        # Values each composed node stands for once its aliases are expanded, by id(node).
        self._values: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            values = self._values.get(id(node))
            if values is None:
                raise LimitError("a YAML alias refers to a value that contains it")
            self._alias_values += values
            if self._alias_values > MAX_ALIAS_VALUES:
                raise LimitError(
                    f"YAML aliases expand to more than the limit of {MAX_ALIAS_VALUES} values"
                )
            return node
        nests = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        self._depth += nests
        if self._depth > MAX_DEPTH:
            raise depth_error("the definition")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= nests
        self._values[id(node)] = 1 + sum(self._values[id(child)] for child in _children(node))
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        for key, _ in node.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.tag == _BOOL_TAG
                and key.value.lower() not in ("true", "false")
            ):
                key.tag = "tag:yaml.org,2002:str"
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_text(text: str | bytes) -> Any:
    """Parse YAML or JSON (JSON is YAML, but its errors read better from the JSON parser).

    DefinitionError with `limit` set for text over a limit of braidflow.topology.limits.
    """
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionError.over(
            LimitError(
                f"the definition is {size} bytes, over the limit of {MAX_DEFINITION_BYTES}",
                too_large=True,
            )
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DefinitionError([Problem("definition", f"is not UTF-8: {exc}")]) from None
    try:
        return _parse(text)
    except LimitError as exc:
        raise DefinitionError.over(exc) from None


def _parse(text: str) -> Any:
    if text.lstrip().startswith(("{", "[")):
        try:
            return parse_json(text, "the definition")
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise DefinitionError([Problem(where, f"invalid JSON: {exc.msg}")]) from None
    try:
        # A SafeLoader: no object tags. Aliases may still nest what they expand to.
        return check_depth(yaml.load(text, Loader=_DefinitionLoader), "the definition")
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


def build_retry(raw: Mapping[str, Any] | None) -> Retry | None:
    """A `retry` mapping of the document as the model has it; None when absent."""
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
        raw.get("label"),
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
        sla_ms=parse_duration(settings["sla"]) if "sla" in settings else None,
        nodes=tuple(
            Node(
                id=n["id"],
                type=n["type"],
                params=n.get("params") or {},
                name=n.get("name"),
                timeout_ms=_timeout_ms(n),
                retry=build_retry(n.get("retry")),
            )
            for n in doc["nodes"]
        ),
        edges=tuple(build_edge(e) for e in doc["edges"]),
    )
