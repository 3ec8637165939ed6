"""Params of delay, approval, subworkflow, join, foreach and end nodes: the checks a JSON Schema
cannot express, and what the params compile to.

A check skips what the JSON Schema already refused (a value of the wrong type),
so that one mistake is reported once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jsonschema

from braidflow.topology.durations import parse_duration, parse_timestamp
from braidflow.topology.expressions import ExpressionError, parse_template
from braidflow.topology.loading import Problem
from braidflow.topology.model import DEFAULT_CHOICES, Node

# Outcomes of an approval's timeout that pick one of its choices.
_CHOOSING_TIMEOUTS = frozenset({"approve", "reject"})

_Check = Callable[[Mapping[str, Any], Mapping[str, Any], str], Iterator[Problem]]


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a valid JSON Schema (2020-12), or None when it is."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = ".".join(str(p) for p in exc.path)
        return f"invalid JSON Schema{' at ' + at if at else ''}: {exc.message}"
    return None


def param_problems(doc: Mapping[str, Any]) -> Iterator[Problem]:
    """Every problem with the params of the delay, approval, subworkflow, join, foreach and end
    nodes."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        return
    for node in nodes:
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            continue
        kind = node.get("type")
        check = _CHECKS.get(kind) if isinstance(kind, str) else None
        params = node.get("params")
        if check is not None and isinstance(params, Mapping):
            yield from check(node, params, f"node '{node['id']}'")


def _delay_problems(
    node: Mapping[str, Any], params: Mapping[str, Any], where: str
) -> Iterator[Problem]:
    if "timeout" in node:
        yield Problem(where, "a delay takes no `timeout`; `for` or `until` says how long it waits")
    given = [key for key in ("for", "until") if key in params]
    if not given:
        yield Problem(where, "params: a delay needs `for` (a duration) or `until` (a timestamp)")
    elif len(given) > 1:
        yield Problem(where, "params: a delay takes `for` or `until`, not both")
    until = params.get("until")
    # A template is checked when it renders; a literal can be checked now.
    if isinstance(until, str) and until and "${" not in until:
        try:
            parse_timestamp(until)
        except ValueError as exc:
            yield Problem(where, f"params.until: {exc}")


def _approval_problems(
    node: Mapping[str, Any], params: Mapping[str, Any], where: str
) -> Iterator[Problem]:
    choices = params.get("choices", list(DEFAULT_CHOICES))
    on_timeout = params.get("on_timeout")
    # Choices the JSON Schema refused (none, or not all text) are reported there alone.
    readable = isinstance(choices, list) and all(c and isinstance(c, str) for c in choices)
    if on_timeout in _CHOOSING_TIMEOUTS and readable and choices and on_timeout not in choices:
        offered = ", ".join(choices)
        yield Problem(
            where, f"params.on_timeout: {on_timeout!r} is not among the choices ({offered})"
        )
    if "on_timeout" in params and "timeout" not in node:
        yield Problem(where, "has `params.on_timeout` but no `timeout`")
    reply_schema = params.get("input")
    if isinstance(reply_schema, Mapping) and (problem := schema_problem(reply_schema)):
        yield Problem(where, f"params.input: {problem}")


def _subworkflow_problems(
    node: Mapping[str, Any], params: Mapping[str, Any], where: str
) -> Iterator[Problem]:
    if params.get("wait") is False and "timeout" in node:
        yield Problem(
            where,
            "has `timeout` but `wait: false`; a subworkflow that does not wait never times out",
        )


def _join_problems(
    node: Mapping[str, Any], params: Mapping[str, Any], where: str
) -> Iterator[Problem]:
    if "timeout" in node and "timeout" in params:
        yield Problem(where, "has `timeout` and `params.timeout`; give only one")


def _foreach_problems(
    node: Mapping[str, Any], params: Mapping[str, Any], where: str
) -> Iterator[Problem]:
    items = params.get("items")
    if isinstance(items, str) and "${" not in items:
        yield Problem(where, f"params.items: {items!r} is neither a list nor a ${{...}} template")
    if isinstance(params.get("do"), Mapping) and "input" in params:
        yield Problem(
            where,
            "has `params.input` but an inline `do`; the inline node's params are its input",
        )


def _end_problems(
    node: Mapping[str, Any], params: Mapping[str, Any], where: str
) -> Iterator[Problem]:
    output = params.get("output")
    if not isinstance(output, str):
        return
    try:
        template = parse_template(output)
    except ExpressionError:
        return  # reported where the templates are compiled
    if template is None or not template.is_lone:
        yield Problem(
            where,
            f"params.output: {output!r} is neither an object nor one ${{...}} template"
            " (the output must be an object)",
        )


_CHECKS: dict[str, _Check] = {
    "end": _end_problems,
    "delay": _delay_problems,
    "approval": _approval_problems,
    "subworkflow": _subworkflow_problems,
    "join": _join_problems,
    "foreach": _foreach_problems,
}


def delay_ms(node: Node) -> int | None:
    """A delay's `for` in milliseconds; None for an `until` delay and other nodes."""
    if node.type != "delay" or "for" not in node.params:
        return None
    return parse_duration(node.params["for"])


def join_timeout_ms(node: Node) -> int | None:
    """A join's timeout, from `params.timeout` or the node's `timeout` (validation forbids both)."""
    if node.type != "join":
        return None
    if "timeout" in node.params:
        return parse_duration(node.params["timeout"])
    return node.timeout_ms


def item_node(node: Node) -> Node | None:
    """The inline node a foreach runs per item, under the foreach's id; None for a workflow `do`."""
    do = node.params.get("do") if node.type == "foreach" else None
    if not isinstance(do, Mapping):
        return None
    timeout = do.get("timeout")
    return Node(
        id=node.id,
        type=do["type"],
        params=do["params"],
        name=do.get("name"),
        timeout_ms=parse_duration(timeout) if timeout is not None else None,
    )


def reply_validator(node: Node) -> jsonschema.protocols.Validator | None:
    """The validator of an approval reply's `data`, when the approval gives an `input` schema."""
    if node.type != "approval" or "input" not in node.params:
        return None
    return jsonschema.Draft202012Validator(node.params["input"])
