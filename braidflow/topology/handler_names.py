"""Task handlers a workflow names that are probably typos of registered ones.

Validation alone cannot know the handlers: executors register them, and workers
may load different handler modules. A worker that deploys does know its own, so
it warns (never refuses) when a handler it lacks is close to one it has.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from braidflow.topology.loading import Problem
from braidflow.topology.suggestions import closest
from braidflow.topology.workflow import CompiledNode, Workflow


def misspelt_handlers(workflow: Workflow, registered: Collection[str]) -> list[Problem]:
    """Each task node whose handler is not in `registered` but close to one that is."""
    problems = []
    for node_id, handler in _handlers(workflow):
        if handler in registered:
            continue
        meant = closest(handler, registered)
        if meant is not None:
            problems.append(
                Problem(
                    f"node '{node_id}'",
                    f"no task handler {handler!r} is registered on this worker;"
                    f" did you mean {meant!r}?",
                )
            )
    return problems


def _handlers(workflow: Workflow) -> Iterator[tuple[str, str]]:
    for node in workflow.nodes.values():
        for runs in (node, node.item_node):
            if _is_task(runs):
                yield node.id, runs.node.params["handler"]  # type: ignore[union-attr]


def _is_task(node: CompiledNode | None) -> bool:
    return (
        node is not None
        and node.type == "task"
        and isinstance(node.node.params.get("handler"), str)
    )
