"""Fan-in workflows of the tests: one input `n`, split into parallel tasks, joined again."""

from __future__ import annotations

from itertools import pairwise


def fan_in(workflow_id: str, tasks: dict[str, str], then: dict[str, str]) -> str:
    """YAML of workflow `workflow_id`: input `{n: integer}`; `split` (parallel) into the
    `tasks` (id: its params), joined at `both`, then the nodes `then` in a chain (id: the rest
    of its flow mapping; the last one an end)."""
    nodes = [
        "{id: split, type: parallel}",
        *(f"{{id: {task}, type: task, params: {params}}}" for task, params in tasks.items()),
        "{id: both, type: join}",
        *(f"{{id: {node}, {rest}}}" for node, rest in then.items()),
    ]
    chain = ["both", *then]
    edges = [
        *(f"{{from: split, to: {task}}}" for task in tasks),
        *(f"{{from: {task}, to: both}}" for task in tasks),
        *(f"{{from: {a}, to: {b}}}" for a, b in pairwise(chain)),
    ]
    return "\n".join(
        [
            f"id: {workflow_id}",
            "input: {type: object, required: [n], properties: {n: {type: integer}}}",
            "nodes:",
            *(f"  - {node}" for node in nodes),
            "edges:",
            *(f"  - {edge}" for edge in edges),
            "",
        ]
    )
