"""The `end` node: renders the execution's output (an object) and completes the execution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.engine.messages import NodeError
from braidflow.engine.nodes.base import ControlKind, json_kind
from braidflow.engine.state import (
    ExecutionStatus,
)
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class End(ControlKind):
    # Its run is a pure function of the state the readying step leaves, so replaying that
    # step's transition derives the end again: no RunNode record is needed for the audit trail.
    dispatched_at_once = True
    runs_last = True

    def decide(self, draft: Draft, node: CompiledNode) -> tuple[Any, set[int]]:
        return draft.render(node, "output", {}), set()

    def output_problem(self, node: CompiledNode, output: Any) -> NodeError | None:
        if isinstance(output, Mapping):
            return None
        # A lone `${...}` output keeps its value's type, known only now.
        message = f"the output of end node {node.id!r} is {json_kind(output)}, not an object"
        return NodeError("InvalidOutput", message, node.id)

    def decided(self, draft: Draft, node: CompiledNode, output: Any, taken: set[int]) -> None:
        draft.finish(ExecutionStatus.COMPLETED, output=output)
