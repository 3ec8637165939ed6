"""Node params: each kind's checks (`braidflow.topology.kinds`) run over a document, and what
the params of delays, joins, foreach and approvals compile to."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema

from braidflow.topology.durations import parse_duration
from braidflow.topology.kinds import ITERATION_TYPES, KINDS
from braidflow.topology.kinds.spec import schema_problem
from braidflow.topology.loading import Problem
from braidflow.topology.model import Node

__all__ = [
    "delay_ms",
    "item_node",
    "join_timeout_ms",
    "join_wait_for",
    "param_problems",
    "reply_validator",
    "schema_problem",
]


def param_problems(doc: Mapping[str, Any]) -> Iterator[Problem]:
    """Every problem of the nodes' params that their kind's check finds."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        return
    for node in nodes:
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            continue
        kind = node.get("type")
        spec = KINDS.get(kind) if isinstance(kind, str) else None
        params = node.get("params")
        if spec is not None and spec.check is not None and isinstance(params, Mapping):
            yield from spec.check(node, params, f"node '{node['id']}'")


def join_wait_for(node: Node) -> int | str:
    """How many inbound branches a node waits for: a join's `wait_for`; `all` for any other."""
    if node.type != "join":
        return "all"
    wait_for: int | str = node.params.get("wait_for", "all")
    return wait_for


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
    """The inline node a foreach runs per item (a loop per pass), under the node's id; None for a
    workflow `do` and the other kinds."""
    do = node.params.get("do") if node.type in ITERATION_TYPES else None
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
