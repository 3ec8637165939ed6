"""The `foreach` node: each attempt runs its items, the inline node or a child execution each.

`engine/foreach.py` keeps the books (which items run, which results wait, which
chunks are due); this module moves the items: dispatch in order, at most
`concurrency` at a time, flush, collect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from braidflow.engine import ids
from braidflow.engine.foreach import (
    DEFAULT_CONCURRENCY,
    collected,
    collection_error,
    dispatched,
    flush,
    foreach_output,
    may_dispatch,
    settled,
)
from braidflow.engine.messages import (
    ChildFinished,
    CollectItems,
    DropItems,
    ItemError,
    ItemsCollected,
    NodeCompleted,
    NodeError,
    NodeFailed,
    StartExecution,
)
from braidflow.engine.nodes.base import (
    Handler,
    NodeKind,
    child_error,
    json_kind,
    normal_edges,
    not_owned,
    timeout_reason,
    timeout_timer,
)
from braidflow.engine.nodes.work import WorkKind
from braidflow.engine.state import (
    ExecutionStatus,
    ForeachProgress,
    NodeRun,
    NodeStatus,
)
from braidflow.topology.expressions import ExpressionError
from braidflow.topology.workflow import CompiledNode

if TYPE_CHECKING:
    from braidflow.engine.step import Draft


class Foreach(NodeKind):
    attempts = True
    patchable = True

    def owned(self) -> Mapping[type, Handler]:
        return {
            NodeCompleted: self.item_completed,
            NodeFailed: self.item_failed,
            ChildFinished: self.item_child_finished,
            ItemsCollected: self.items_collected,
        }

    def patch_problem(self, node: CompiledNode, given: Any) -> str | None:
        return (
            None
            if isinstance(given, list)
            else "a foreach node's patched input is its list of items"
        )

    def start(self, draft: Draft, node: CompiledNode, attempt: int, given: Any) -> None:
        """Start attempt `attempt` over `given` (None: render its items)."""
        items = given
        if items is None:
            try:
                items = draft.render(node, "items")
            except ExpressionError as exc:
                draft.failed_to_start(node, attempt, exc)
                return
        if not isinstance(items, list):
            # The type, not the value: a big object would swamp the error and the records.
            problem = ExpressionError(f"params.items gave {json_kind(items)}, not a list")
            draft.failed_to_start(node, attempt, problem)
            return
        params = node.node.params
        draft.emit_event(
            "node.started",
            node_id=node.id,
            attempt=attempt,
            data={
                "items": len(items),
                "concurrency": params.get("concurrency", DEFAULT_CONCURRENCY),
            },
        )
        previous = draft.nodes.get(node.id)
        run = NodeRun(
            node.id,
            NodeStatus.RUNNING,
            attempt,
            items,
            None,
            previous.error if previous is not None else None,
            draft.at,
            None,
            previous.errors if previous is not None else (),
        )
        draft.nodes[node.id] = run
        if not items:
            output = foreach_output((), (), params.get("continue_on_error", False))
            draft.complete(node, run, output, normal_edges(node))
            return
        if node.node.timeout_ms is not None:
            draft.timers[timeout_timer(node.id, attempt)] = draft.at + node.node.timeout_ms
        draft.foreach[node.id] = ForeachProgress(node.id, attempt, len(items))
        self._advance(draft, node)

    def _advance(self, draft: Draft, node: CompiledNode) -> None:
        """Flush the chunks whose items are all in, and dispatch items while there is room.

        Once every item is in, the runtime is asked for the results. While the
        execution fails no new item starts, as no new node does: once its
        running items have drained, the foreach is cancelled.
        """
        run = draft.nodes[node.id]
        concurrency = node.node.params.get("concurrency", DEFAULT_CONCURRENCY)
        while (progress := draft.foreach.get(node.id)) is not None:
            progress, chunks = flush(progress, draft.state.execution_id)
            draft.outgoing.extend(chunks)
            draft.foreach[node.id] = progress
            if collected(progress):
                _collect(draft, progress)
                return
            if draft.error is not None:
                if not progress.running:
                    _drop_items(draft, node.id)
                    draft.timers.pop(timeout_timer(node.id, run.attempt), None)
                    draft.nodes[node.id] = replace(
                        run, status=NodeStatus.CANCELLED, completed_at=draft.at
                    )
                    draft.fail_when_drained()
                return
            if not may_dispatch(progress, concurrency):
                return
            index = progress.next
            draft.foreach[node.id] = dispatched(progress)
            failure = _send_item(draft, node, run, index)
            if failure is not None:
                self._settle(draft, node, index, None, failure)

    def item_completed(self, draft: Draft, node: CompiledNode, t: NodeCompleted) -> str | None:
        if t.item is not None:
            return self._item_finished(draft, t.node_id, t.attempt, t.item, t.output, None)
        return self._own_result(draft, t, "complete")

    def item_failed(self, draft: Draft, node: CompiledNode, t: NodeFailed) -> str | None:
        if t.item is not None:
            return self._item_finished(draft, t.node_id, t.attempt, t.item, None, t.error)
        return self._own_result(draft, t, "fail")

    def _own_result(self, draft: Draft, t: NodeCompleted | NodeFailed, verb: str) -> str:
        run = draft.nodes.get(t.node_id)
        if run is None or run.status != NodeStatus.RUNNING or run.attempt != t.attempt:
            return not_owned(t)
        return f"node {t.node_id!r} is a foreach: only its items {verb}"

    def item_child_finished(self, draft: Draft, node: CompiledNode, t: ChildFinished) -> str | None:
        progress = draft.foreach.get(t.node_id)
        if t.item is None or progress is None:
            return not_owned(t)
        key = ids.item_key(t.node_id, t.item)
        if draft.children.get(key) != t.child_execution_id:
            return not_owned(t)
        del draft.children[key]
        error = None if t.status == ExecutionStatus.COMPLETED else child_error(t)
        return self._item_finished(draft, t.node_id, progress.attempt, t.item, t.output, error)

    def items_collected(self, draft: Draft, node: CompiledNode, t: ItemsCollected) -> str | None:
        progress = draft.foreach.get(t.node_id)
        if progress is None or progress.attempt != t.attempt or not collected(progress):
            return not_owned(t)
        run = draft.nodes[t.node_id]
        _drop_items(draft, t.node_id)
        error = t.error or collection_error(progress, t)
        if error is not None:
            draft.attempt_failed(node, run, replace(error, node_id=node.id))
            return None
        continue_on_error = node.node.params.get("continue_on_error", False)
        output = foreach_output(t.results, t.errors, continue_on_error)
        draft.complete(node, run, output, normal_edges(node))
        return None

    def _item_finished(
        self,
        draft: Draft,
        node_id: str,
        attempt: int,
        index: int,
        output: Any,
        error: NodeError | None,
    ) -> str | None:
        progress = draft.foreach.get(node_id)
        if progress is None or progress.attempt != attempt or index not in progress.running:
            return f"item {index} of node {node_id!r} attempt {attempt} is not running"
        node = draft.workflow.nodes[node_id]
        self._settle(draft, node, index, output, error)
        self._advance(draft, node)
        return None

    def _settle(
        self, draft: Draft, node: CompiledNode, index: int, output: Any, error: NodeError | None
    ) -> None:
        """Record an item's result; a failure fails the attempt unless `continue_on_error`."""
        if error is not None and not node.node.params.get("continue_on_error", False):
            run = draft.nodes[node.id]
            _stop_items(draft, node.id, f"item {index} of node {node.id!r} failed")
            failure = NodeError(error.type, f"item {index}: {error.message}", node.id)
            draft.attempt_failed(node, run, failure)
            return
        item_failure = None if error is None else ItemError(index, error.type, error.message)
        draft.foreach[node.id] = settled(draft.foreach[node.id], index, output, item_failure)

    def timed_out(self, draft: Draft, node: CompiledNode, run: NodeRun) -> None:
        if run.status == NodeStatus.RUNNING:
            _stop_items(draft, node.id, timeout_reason(draft, node))
        super().timed_out(draft, node, run)

    def execution_finishing(self, draft: Draft) -> None:
        for node_id in list(draft.foreach):
            _drop_items(draft, node_id)


def _send_item(draft: Draft, node: CompiledNode, run: NodeRun, index: int) -> NodeError | None:
    """Send item `index` of the attempt to an executor, or start its child execution.

    A template that fails to render for this item fails the item (the error is
    returned), like an item whose work failed.
    """
    item = run.input[index]
    scope = draft.scope({"index": index, "item": item})
    inline = node.item_node
    work = draft.kind_of(inline) if inline is not None else None
    try:
        if inline is not None:
            assert isinstance(work, WorkKind)
            given = work.request_input(draft, inline, scope)
        else:
            given = draft.render(node, "input", item, scope)
    except ExpressionError as exc:
        return NodeError("ExpressionError", str(exc), node.id)
    s = draft.state
    if inline is not None:
        assert isinstance(work, WorkKind)
        key = ids.item_task_key(s.execution_id, node.id, run.attempt, index)
        draft.outgoing.append(work.task_request(draft, inline, run.attempt, key, given, index))
        return None
    child = ids.item_child_id(s.execution_id, node.id, run.attempt, index)
    link = draft.link(node, draft.parent_view(), index)
    workflow_id = node.node.params["do"]
    # Version 0: the latest deployed when the child starts, which only the runtime knows.
    draft.outgoing.append(
        StartExecution(
            ids.start_id(child),
            child,
            draft.at,
            workflow_id,
            0,
            given,
            None,
            link,
            tenant=s.tenant,
            traceparent=draft.node_traceparent(node.id, run.attempt),
        )
    )
    draft.children[ids.item_key(node.id, index)] = child
    return None


def _collect(draft: Draft, progress: ForeachProgress) -> None:
    s = draft.state
    draft.outgoing.append(
        CollectItems(
            ids.collect_id(s.execution_id, progress.node_id, progress.attempt),
            s.execution_id,
            draft.at,
            progress.node_id,
            progress.attempt,
            progress.total,
            progress.chunks,
        )
    )


def _stop_items(draft: Draft, node_id: str, reason: str) -> None:
    """A foreach attempt ends early: its items' children are cancelled, its results dropped."""
    progress = _drop_items(draft, node_id)
    for index in progress.running:
        child = draft.children.pop(ids.item_key(node_id, index), None)
        if child is not None:
            draft.cancel_child(child, reason)


def _drop_items(draft: Draft, node_id: str) -> ForeachProgress:
    """Forget a foreach attempt's progress; the runtime may drop the chunks it flushed."""
    progress = draft.foreach.pop(node_id)
    if progress.chunks:
        draft.outgoing.append(
            DropItems(draft.state.execution_id, node_id, progress.attempt, progress.chunks)
        )
    return progress
