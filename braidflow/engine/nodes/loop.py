"""The `loop` node: runs its `do` once per pass, one pass after another.

With a workflow `do`, each pass is a child execution, `<execution>.<node>[<pass>]`
(`.<attempt>` before the bracket from the second attempt on, as for a foreach
item); with an inline task or http node, each pass is a task request for the item
`<pass>` (idempotency key `<execution>:<node>:<attempt>:<pass>`), as a foreach
item's. The passes started so far are the node's `LoopProgress` in the execution
state, so a loop survives a restart like every other wait. Before each pass after the first, `while` is
rendered with `last` (`{output, index}` of the pass before) and must give a boolean;
with `count`, exactly that many passes run. A `while` that still holds after
`max_iterations` passes fails the node with `MaxIterations`; a pass that fails
fails the node with the child's error. The node's output is
`{output: <the last pass's output>, passes: <how many ran>}`.

A loop is no attempt kind: it takes no `retry` of its own (a pass's workflow
retries its nodes) and its input cannot be patched; a redrive runs it again from
the first pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from braidflow.engine import ids
from braidflow.engine.messages import (
    ChildFinished,
    NodeCompleted,
    NodeError,
    NodeFailed,
    StartExecution,
)
from braidflow.engine.nodes.base import (
    Handler,
    NodeKind,
    cancel_child_on_timeout,
    child_error,
    json_kind,
    normal_edges,
    not_owned,
    timeout_timer,
)
from braidflow.engine.nodes.work import WorkKind
from braidflow.engine.state import (
    ExecutionStatus,
    LoopProgress,
    NodeRun,
    NodeStatus,
)
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Loop(NodeKind):
    def owned(self) -> Mapping[type, Handler]:
        return {
            ChildFinished: self.child_finished,
            NodeCompleted: self.task_finished,
            NodeFailed: self.task_finished,
        }

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        params = node.node.params
        draft.emit_event(
            "node.started",
            node_id=node.id,
            attempt=attempt,
            data={"do": params["do"], "max_iterations": params["max_iterations"]},
        )
        run = NodeRun(
            node.id,
            NodeStatus.WAITING,
            attempt,
            started_at=draft.at,
            errors=draft.earlier_errors(node.id),
        )
        draft.nodes[node.id] = run
        if node.node.timeout_ms is not None:
            draft.timers[timeout_timer(node.id, attempt)] = draft.at + node.node.timeout_ms
        draft.loops[node.id] = LoopProgress(node.id, 0)
        self._next_pass(draft, node, run, None)

    def child_finished(self, draft: Draft, node: CompiledNode, t: ChildFinished) -> str | None:
        """The child execution of the pass running ended."""
        run = draft.nodes.get(t.node_id)
        progress = draft.loops.get(t.node_id)
        if (
            t.item is not None
            or run is None
            or progress is None
            or run.status != NodeStatus.WAITING
            or draft.children.get(t.node_id) != t.child_execution_id
        ):
            return not_owned(t)
        del draft.children[t.node_id]
        error = None if t.status == ExecutionStatus.COMPLETED else child_error(t)
        self._pass_finished(draft, node, run, progress, t.output, error)
        return None

    def task_finished(
        self, draft: Draft, node: CompiledNode, t: NodeCompleted | NodeFailed
    ) -> str | None:
        """The inline node's task of the pass running came back."""
        run = draft.nodes.get(t.node_id)
        progress = draft.loops.get(t.node_id)
        if (
            node.item_node is None
            or run is None
            or progress is None
            or run.status != NodeStatus.WAITING
            or run.attempt != t.attempt
            or t.item != progress.passes - 1
        ):
            return not_owned(t)
        if isinstance(t, NodeCompleted):
            self._pass_finished(draft, node, run, progress, t.output, None)
        else:
            error = NodeError(t.error.type, f"pass {t.item}: {t.error.message}", node.id)
            self._pass_finished(draft, node, run, progress, None, error)
        return None

    def _pass_finished(
        self,
        draft: Draft,
        node: CompiledNode,
        run: NodeRun,
        progress: LoopProgress,
        output: Any,
        error: NodeError | None,
    ) -> None:
        if error is not None:
            self._fail(draft, node, run, error)
            return
        if draft.error is not None:
            # The execution is failing: no new pass starts, as no new node does.
            del draft.loops[node.id]
            draft.clear_timers(node.id)
            draft.nodes[node.id] = replace(run, status=NodeStatus.CANCELLED, completed_at=draft.at)
            draft.fail_when_drained()
            return
        self._next_pass(draft, node, run, {"output": output, "index": progress.passes - 1})

    def _next_pass(
        self, draft: Draft, node: CompiledNode, run: NodeRun, last: dict[str, Any] | None
    ) -> None:
        """Start the next pass, or end the loop: its condition no longer holds, or the limit."""
        passes = draft.loops[node.id].passes
        params = node.node.params
        scope = draft.scope({"last": last, "index": passes})
        inline = node.item_node
        work = draft.kind_of(inline) if inline is not None else None
        try:
            again = _again(draft, node, passes, scope)
            if not again:
                given = None
            elif inline is not None:
                assert isinstance(work, WorkKind)
                given = work.request_input(draft, inline, scope)
            else:
                given = draft.render(node, "input", {}, scope)
        except ExpressionError as exc:
            self._fail(draft, node, run, NodeError("ExpressionError", str(exc), node.id))
            return
        if not again:
            del draft.loops[node.id]
            output = {"output": last["output"] if last is not None else None, "passes": passes}
            draft.complete(node, run, output, normal_edges(node))
            return
        limit = params["max_iterations"]
        if passes >= limit:
            message = f"`while` still held after {passes} passes (max_iterations: {limit})"
            self._fail(draft, node, run, NodeError("MaxIterations", message, node.id))
            return
        s = draft.state
        draft.loops[node.id] = LoopProgress(node.id, passes + 1)
        if inline is not None:
            assert isinstance(work, WorkKind)
            key = ids.item_task_key(s.execution_id, node.id, run.attempt, passes)
            request = work.task_request(draft, inline, run.attempt, key, given, passes)
            draft.outgoing.append(request)
            return
        child = ids.item_child_id(s.execution_id, node.id, run.attempt, passes)
        link = draft.link(node, draft.parent_view())
        # Version 0: the latest deployed when the child starts, which only the runtime knows.
        draft.outgoing.append(
            StartExecution(
                ids.start_id(child),
                child,
                draft.at,
                params["do"],
                0,
                given,
                None,
                link,
                tenant=s.tenant,
                traceparent=draft.node_traceparent(node.id, run.attempt),
            )
        )
        draft.children[node.id] = child

    def _fail(self, draft: Draft, node: CompiledNode, run: NodeRun, error: NodeError) -> None:
        draft.loops.pop(node.id, None)
        draft.fail_node(node, run.attempt, error, run)

    def timed_out(self, draft: Draft, node: CompiledNode, run: NodeRun) -> None:
        if run.status != NodeStatus.WAITING:
            return
        cancel_child_on_timeout(draft, node)
        progress = draft.loops.get(node.id)
        passes = progress.passes if progress is not None else 0
        message = (
            f"the loop did not finish within {node.node.timeout_ms} ms ({passes} passes started)"
        )
        self._fail(draft, node, run, NodeError("Timeout", message, node.id))

    def execution_finishing(self, draft: Draft) -> None:
        draft.loops.clear()


def _again(draft: Draft, node: CompiledNode, passes: int, scope: Mapping[str, Any]) -> bool:
    """Whether another pass runs: `count` not reached, or `while` holds (the first always runs)."""
    count = node.node.params.get("count")
    if count is not None:
        return bool(passes < count)
    if passes == 0:
        return True
    holds = draft.render(node, "while", scope=scope)
    if not isinstance(holds, bool):
        raise ExpressionError(f"params.while gave {json_kind(holds)}, not a boolean")
    return holds
