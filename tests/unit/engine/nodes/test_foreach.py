"""The engine on foreach nodes: items in order, bounded state, failures, retries, stops."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from braidflow.engine import (
    ITEMS_PER_CHUNK,
    CancelExecution,
    ChildFinished,
    CollectItems,
    DropItems,
    ExecutionState,
    ItemError,
    ItemsChunk,
    ItemsCollected,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    ParentLink,
    PauseExecution,
    RedriveNode,
    ResumeExecution,
    StartExecution,
    StepResult,
    TaskRequest,
    TimerFired,
    Transition,
    step,
)
from braidflow.engine.cost import execution_cost
from braidflow.engine.dry_run import dry_run, parse_answers
from braidflow.engine.state import ExecutionStatus, NodeStatus
from braidflow.engine.trace_context import ExecutionTrace
from braidflow.topology import Workflow, compile_workflow
from braidflow.topology.departments import compile_department, with_defaults

EX = "ex"
T0 = 1_750_000_000_000
SCORE = {
    "type": "task",
    "params": {"handler": "hr.score", "input": {"x": "${item}", "n": "${index}"}},
}


def foreach_workflow(params: dict[str, Any], **node: Any) -> Workflow:
    """each (a foreach with `params`) -> done, which outputs the foreach's output."""
    return compile_workflow(
        {
            "id": "wf",
            "variables": {"url": "http://example.test"},
            "nodes": [
                {"id": "each", "type": "foreach", "params": params, **node},
                {
                    "id": "done",
                    "type": "end",
                    "params": {"output": {"out": "${nodes.each.output}"}},
                },
            ],
            "edges": [{"from": "each", "to": "done"}],
        }
    )


@dataclass
class Runtime:
    """Plays the runtime around one execution.

    Delivers the execution's own transitions, keeps foreach chunks and answers
    `CollectItems` by putting them together (unless `collect` is off); work and
    child executions wait in `tasks` and `starts` for the test to answer.
    Every transition is delivered twice: the second time must change nothing.
    """

    workflow: Workflow
    collect: bool = True
    state: ExecutionState | None = None
    at: int = T0
    queue: deque[Transition] = field(default_factory=deque)
    tasks: list[TaskRequest] = field(default_factory=list)
    starts: list[StartExecution] = field(default_factory=list)
    cancelled: list[CancelExecution] = field(default_factory=list)
    chunks: dict[tuple[str, int], dict[int, ItemsChunk]] = field(default_factory=dict)
    collects: list[CollectItems] = field(default_factory=list)
    dropped: list[DropItems] = field(default_factory=list)
    events: list[LifecycleEvent] = field(default_factory=list)
    most_running: int = 0
    most_held: int = 0  # results held in the state at once

    def tick(self) -> int:
        self.at += 1
        return self.at

    def start(self, input_: Any) -> None:
        self.send(StartExecution("start", EX, self.tick(), "wf", 1, input_))

    def send(self, t: Transition) -> StepResult:
        """Deliver `t`, then everything it caused for this execution."""
        result = self.deliver(t)
        while self.queue:
            self.deliver(self.queue.popleft())
        return result

    def deliver(self, t: Transition) -> StepResult:
        result = step(self.workflow, self.state, t)
        assert result.ignored is None, result.ignored
        again = step(self.workflow, result.state, t)
        assert again.ignored is not None and again.outgoing == (), again
        self.state = result.state
        for message in result.outgoing:
            self.route(message)
        for progress in self.state.foreach.values() if self.state else ():
            self.most_running = max(self.most_running, len(progress.running))
            self.most_held = max(self.most_held, len(progress.pending) + len(progress.failures))
        return result

    def route(self, message: Outgoing) -> None:
        if isinstance(message, TaskRequest):
            self.tasks.append(message)
        elif isinstance(message, LifecycleEvent):
            self.events.append(message)
        elif isinstance(message, ItemsChunk):
            stored = self.chunks.setdefault((message.node_id, message.attempt), {})
            assert message.chunk == len(stored), "chunks are flushed strictly in order"
            stored[message.chunk] = message
        elif isinstance(message, DropItems):
            stored = self.chunks.pop((message.node_id, message.attempt))
            assert message.chunks == len(stored)
            self.dropped.append(message)
        elif isinstance(message, CollectItems):
            self.collects.append(message)
            if self.collect:
                self.queue.append(self.collected(message))
        elif isinstance(message, StartExecution):
            self.starts.append(message)
        elif isinstance(message, CancelExecution) and message.execution_id != EX:
            self.cancelled.append(message)
        elif isinstance(message, Transition) and message.execution_id == EX:
            self.queue.append(message)

    def collected(self, request: CollectItems, *, skip: int | None = None) -> ItemsCollected:
        """The stored chunks of the attempt, put together (`skip`: as if that one were lost)."""
        stored = self.chunks.get((request.node_id, request.attempt), {})
        assert len(stored) == request.chunks
        results: list[Any] = []
        errors: list[ItemError] = []
        for k in range(request.chunks):
            if k != skip:
                results.extend(stored[k].results)
                errors.extend(stored[k].errors)
        return ItemsCollected(
            f"{request.id}ed",
            EX,
            self.tick(),
            request.node_id,
            request.attempt,
            tuple(results),
            tuple(errors),
        )

    def task(self, item: int) -> TaskRequest:
        return next(r for r in self.tasks if r.item == item)

    def completed(self, request: TaskRequest, output: Any) -> NodeCompleted:
        key = request.idempotency_key
        return NodeCompleted(
            f"{key}/done", EX, self.tick(), request.node_id, request.attempt, output, request.item
        )

    def failed(self, request: TaskRequest, error: NodeError) -> NodeFailed:
        key = request.idempotency_key
        return NodeFailed(
            f"{key}/failed", EX, self.tick(), request.node_id, request.attempt, error, request.item
        )

    def answer(self, request: TaskRequest, output: Any) -> StepResult:
        self.tasks.remove(request)
        return self.send(self.completed(request, output))

    def answer_all(
        self, output: Callable[[TaskRequest], Any], pick: random.Random | None = None
    ) -> None:
        """Answer every task, new ones included, in a random order among those in flight."""
        while self.tasks:
            request = pick.choice(self.tasks) if pick else self.tasks[0]
            self.answer(request, output(request))

    def child_finished(
        self, start: StartExecution, status: str, output: Any = None, error: NodeError | None = None
    ) -> ChildFinished:
        assert start.parent is not None
        return ChildFinished(
            f"{start.execution_id}/finished",
            EX,
            self.tick(),
            start.parent.node_id,
            start.execution_id,
            status,
            output,
            error,
            start.parent.item,
        )

    def fire(self, timer_id: str) -> StepResult:
        assert self.state is not None
        due = self.state.timers[timer_id]
        self.at = max(self.at, due)
        return self.send(TimerFired(f"{EX}/timer/{timer_id}", EX, due, timer_id))

    def ignored(self, t: Transition) -> str:
        result = step(self.workflow, self.state, t)
        assert result.ignored is not None
        assert result.state == self.state and result.outgoing == ()
        return result.ignored

    def node_events(self, node_id: str = "each") -> list[str]:
        return [e.type for e in self.events if e.node_id == node_id]


def doubled(request: TaskRequest) -> Any:
    return request.input["x"] * 2


# Items in order, within the concurrency, in chunks


def test_results_come_back_in_item_order_whatever_order_items_finish() -> None:
    rt = Runtime(foreach_workflow({"items": "${input.xs}", "do": SCORE, "concurrency": 7}))
    rt.start({"xs": list(range(345))})
    assert len(rt.tasks) == 7
    rt.answer_all(doubled, random.Random(5))
    assert rt.state is not None
    assert rt.state.status == ExecutionStatus.COMPLETED
    assert rt.state.output == {"out": [x * 2 for x in range(345)]}
    assert rt.state.nodes["each"].output == [x * 2 for x in range(345)]
    assert rt.state.foreach == {}


def test_concurrency_is_never_exceeded() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(60)), "do": SCORE, "concurrency": 4}))
    rt.start({})
    pick = random.Random(1)
    while rt.tasks:
        assert len(rt.tasks) <= 4
        rt.answer(pick.choice(rt.tasks), 0)
    assert rt.most_running == 4
    assert rt.state is not None and rt.state.status == ExecutionStatus.COMPLETED


def test_an_item_goes_out_as_a_task_request_of_the_inline_node() -> None:
    inline = {**SCORE, "timeout": "5s"}
    rt = Runtime(foreach_workflow({"items": ["a", "b"], "do": inline}))
    rt.start({})
    assert rt.tasks == [
        TaskRequest(
            EX,
            "wf",
            "each",
            "task",
            1,
            f"{EX}:each:1:{i}",
            rt.at,
            {"x": x, "n": i},
            "hr.score",
            5_000,
            i,
            # Every item's task runs in the span of the node's attempt.
            traceparent=ExecutionTrace.of(EX, None).node_header("each", 1),
        )
        for i, x in enumerate(["a", "b"])
    ]


def test_an_inline_http_node_renders_its_request_per_item() -> None:
    inline = {
        "type": "http",
        "params": {"method": "POST", "url": "${vars.url}/${index}", "body": {"who": "${item}"}},
    }
    rt = Runtime(foreach_workflow({"items": ["ada"], "do": inline}))
    rt.start({})
    (request,) = rt.tasks
    assert (request.kind, request.handler, request.item) == ("http", None, 0)
    assert request.input == {
        "method": "POST",
        "url": "http://example.test/0",
        "headers": {},
        "query": {},
        "body": {"who": "ada"},
        "expect_status": None,
    }


def test_results_leave_the_state_in_chunks_kept_until_collected() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(345)), "do": SCORE}))
    rt.start({})
    rt.answer_all(doubled)
    assert rt.collects == [
        CollectItems(f"{EX}/each/1/collect", EX, rt.collects[0].at, "each", 1, 345, 4)
    ]
    assert rt.dropped == [DropItems(EX, "each", 1, 4)]
    assert rt.chunks == {}


def test_chunks_hold_their_items_results_in_order() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(150)), "do": SCORE}), collect=False)
    rt.start({})
    rt.answer_all(doubled, random.Random(2))
    stored = rt.chunks[("each", 1)]
    assert stored[0].results == tuple(x * 2 for x in range(ITEMS_PER_CHUNK))
    assert stored[1].results == tuple(x * 2 for x in range(ITEMS_PER_CHUNK, 150))
    assert rt.state is not None and rt.state.nodes["each"].status == NodeStatus.RUNNING


def test_ten_thousand_items_never_hold_more_than_a_chunk_and_the_concurrency() -> None:
    rt = Runtime(foreach_workflow({"items": "${input.xs}", "do": SCORE, "concurrency": 50}))
    rt.start({"xs": list(range(10_000))})
    rt.answer_all(doubled, random.Random(3))
    assert rt.state is not None
    assert rt.state.output == {"out": [x * 2 for x in range(10_000)]}
    assert 0 < rt.most_held <= ITEMS_PER_CHUNK + 50
    assert rt.most_running == 50
    # No lifecycle events per item: there are ten thousand of them.
    assert rt.node_events() == ["node.started", "node.completed"]
    started = next(e for e in rt.events if e.type == "node.started")
    assert started.data == {"items": 10_000, "concurrency": 50}


def test_a_straggler_holds_up_dispatch_rather_than_piling_up_results() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(1_000)), "do": SCORE, "concurrency": 10}))
    rt.start({})
    slow = rt.task(0)
    while len(rt.tasks) > 1:
        rt.answer(next(r for r in rt.tasks if r is not slow), 1)
    assert rt.state is not None
    progress = rt.state.foreach["each"]
    assert (progress.next, progress.running, progress.chunks) == (ITEMS_PER_CHUNK + 10, (0,), 0)
    assert len(progress.pending) == ITEMS_PER_CHUNK + 9
    rt.answer(slow, 1)
    assert len(rt.tasks) == 10
    rt.answer_all(lambda _: 1)
    assert rt.state.output == {"out": [1] * 1_000}
    assert rt.most_held <= ITEMS_PER_CHUNK + 10


def test_an_empty_list_completes_at_once() -> None:
    rt = Runtime(foreach_workflow({"items": "${input.xs}", "do": SCORE}))
    rt.start({"xs": []})
    assert rt.state is not None and rt.state.status == ExecutionStatus.COMPLETED
    assert rt.state.output == {"out": []}
    assert rt.tasks == [] and rt.collects == []
    assert rt.node_events() == ["node.started", "node.completed"]
    started = next(e for e in rt.events if e.type == "node.started")
    assert started.data == {"items": 0, "concurrency": 10}


def test_an_empty_list_with_continue_on_error_has_no_results_and_no_errors() -> None:
    rt = Runtime(foreach_workflow({"items": [], "do": "score", "continue_on_error": True}))
    rt.start({})
    assert rt.state is not None
    assert rt.state.output == {"out": {"results": [], "errors": []}}


# Failures


@pytest.mark.parametrize(
    ("items", "kind"), [("abc", "a string"), ({"a": 1}, "an object"), (None, "null")]
)
def test_items_that_are_not_a_list_fail_the_node(items: Any, kind: str) -> None:
    rt = Runtime(foreach_workflow({"items": "${input.xs}", "do": SCORE}))
    rt.start({"xs": items})
    assert rt.state is not None and rt.state.status == ExecutionStatus.FAILED
    assert rt.state.nodes["each"].error == NodeError(
        "ExpressionError", f"params.items gave {kind}, not a list", "each"
    )
    assert rt.node_events() == ["node.started", "node.failed", "node.dead_lettered"]


def test_items_that_do_not_render_fail_the_node() -> None:
    rt = Runtime(foreach_workflow({"items": "${input.xs}", "do": SCORE}))
    rt.start({})
    assert rt.state is not None and rt.state.status == ExecutionStatus.FAILED
    error = rt.state.nodes["each"].error
    assert error is not None and error.type == "ExpressionError"


def test_continue_on_error_records_failed_items_in_the_output() -> None:
    wf = foreach_workflow({"items": list(range(10)), "do": SCORE, "continue_on_error": True})
    rt = Runtime(wf)
    rt.start({})
    while rt.tasks:
        request = rt.tasks.pop(0)
        if request.item in (3, 7):
            rt.send(rt.failed(request, NodeError("ValueError", f"bad {request.item}")))
        else:
            rt.send(rt.completed(request, request.item))
    assert rt.state is not None
    assert rt.state.output == {
        "out": {
            "results": [0, 1, 2, None, 4, 5, 6, None, 8, 9],
            "errors": [
                {"index": 3, "type": "ValueError", "message": "bad 3"},
                {"index": 7, "type": "ValueError", "message": "bad 7"},
            ],
        }
    }


def test_an_item_that_does_not_render_fails_as_an_item() -> None:
    inline = {"type": "task", "params": {"handler": "h", "input": "${item.name}"}}
    items = [{"name": "a"}, 5, {"name": "c"}]
    rt = Runtime(foreach_workflow({"items": items, "do": inline, "continue_on_error": True}))
    rt.start({})
    assert [r.item for r in rt.tasks] == [0, 2]
    rt.answer_all(lambda r: r.input)
    assert rt.state is not None
    output = rt.state.output["out"]
    assert output["results"] == ["a", None, "c"]
    assert [(e["index"], e["type"]) for e in output["errors"]] == [(1, "ExpressionError")]


def test_a_failed_item_fails_the_node_and_drops_its_chunks() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(250)), "do": SCORE, "concurrency": 5}))
    rt.start({})
    while rt.tasks[0].item != 120:
        rt.answer(rt.tasks[0], 0)
    failing, late = rt.tasks[:2]
    rt.tasks.clear()
    rt.send(rt.failed(failing, NodeError("ValueError", "bad")))
    assert rt.state is not None and rt.state.status == ExecutionStatus.FAILED
    assert rt.state.nodes["each"].error == NodeError("ValueError", "item 120: bad", "each")
    assert rt.dropped == [DropItems(EX, "each", 1, 1)]
    assert rt.chunks == {} and rt.state.foreach == {}
    assert rt.ignored(rt.completed(late, 0)) == "execution already failed"


def test_a_failed_child_fails_the_node_and_cancels_the_other_children() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(6)), "do": "score", "concurrency": 3}))
    rt.start({})
    assert [s.execution_id for s in rt.starts] == ["ex.each[0]", "ex.each[1]", "ex.each[2]"]
    error = NodeError("Boom", "it broke")
    rt.send(rt.child_finished(rt.starts[1], ExecutionStatus.FAILED, error=error))
    assert rt.state is not None and rt.state.status == ExecutionStatus.FAILED
    assert rt.state.nodes["each"].error == NodeError("Boom", "item 1: ex.each[1]: it broke", "each")
    assert [(c.execution_id, c.reason) for c in rt.cancelled] == [
        ("ex.each[0]", "item 1 of node 'each' failed"),
        ("ex.each[2]", "item 1 of node 'each' failed"),
    ]
    assert rt.state.children == {}
    rt.ignored(rt.child_finished(rt.starts[0], ExecutionStatus.COMPLETED, 1))


def test_a_failed_attempt_runs_the_whole_foreach_again_after_its_backoff() -> None:
    wf = foreach_workflow(
        {"items": [10, 20, 30, 40], "do": SCORE, "concurrency": 2},
        retry={"max_attempts": 2, "initial": "1s"},
    )
    rt = Runtime(wf)
    rt.start({})
    first, second = rt.tasks
    rt.tasks.clear()
    rt.send(rt.failed(second, NodeError("ValueError", "bad")))
    assert rt.state is not None
    run = rt.state.nodes["each"]
    assert (run.status, run.errors) == (
        NodeStatus.WAITING,
        (NodeError("ValueError", "item 1: bad", "each"),),
    )
    assert rt.node_events()[-1] == "node.retrying"
    assert rt.ignored(rt.completed(first, 1)) == "item 0 of node 'each' attempt 1 is not running"
    rt.fire("each/1/retry")
    assert [r.idempotency_key for r in rt.tasks] == [f"{EX}:each:2:0", f"{EX}:each:2:1"]
    assert rt.ignored(rt.completed(first, 1)) == "item 0 of node 'each' attempt 1 is not running"
    rt.answer_all(doubled)
    assert rt.state.status == ExecutionStatus.COMPLETED
    assert rt.state.output == {"out": [20, 40, 60, 80]}
    assert rt.state.nodes["each"].attempt == 2


def test_duplicate_and_stale_results_are_ignored() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(5)), "do": SCORE, "concurrency": 2}))
    rt.start({})
    request = rt.task(0)
    rt.answer(request, 0)  # the driver delivers it twice
    assert "is not running" in rt.ignored(rt.completed(request, 0))
    never_sent = TaskRequest(EX, "wf", "each", "task", 1, f"{EX}:each:1:4", 0, item=4)
    assert "item 4" in rt.ignored(rt.completed(never_sent, 0))
    other_attempt = TaskRequest(EX, "wf", "each", "task", 2, f"{EX}:each:2:1", 0, item=1)
    assert "attempt 2" in rt.ignored(rt.completed(other_attempt, 0))
    whole = NodeCompleted("whole", EX, rt.tick(), "each", 1, [])
    assert rt.ignored(whole) == "node 'each' is a foreach: only its items complete"
    collected = ItemsCollected("early", EX, rt.tick(), "each", 1, ())
    assert rt.ignored(collected) == "node 'each' attempt 1 is not collecting its items"


# Child executions


def test_a_workflow_do_starts_a_child_execution_per_item() -> None:
    params = {
        "items": [{"name": "ada"}, {"name": "bob"}],
        "do": "score",
        "input": {"who": "${item.name}", "n": "${index}"},
    }
    rt = Runtime(foreach_workflow(params))
    rt.start({"k": 1})
    context = {"input": {"k": 1}, "vars": {"url": "http://example.test"}, "event": None}
    assert rt.starts == [
        StartExecution(
            f"ex.each[{i}]/start",
            f"ex.each[{i}]",
            rt.at,
            "score",
            0,
            {"who": name, "n": i},
            None,
            ParentLink(EX, "wf", "each", 1, context, i),
            traceparent=ExecutionTrace.of(EX, None).node_header("each", 1),
        )
        for i, name in enumerate(["ada", "bob"])
    ]
    assert rt.state is not None
    assert rt.state.children == {"each[0]": "ex.each[0]", "each[1]": "ex.each[1]"}
    for start in reversed(rt.starts):
        rt.send(rt.child_finished(start, ExecutionStatus.COMPLETED, start.input["who"]))
    assert rt.state.output == {"out": ["ada", "bob"]}
    assert rt.state.children == {}


def test_a_child_gets_the_item_itself_without_an_input_template() -> None:
    rt = Runtime(foreach_workflow({"items": [{"a": 1}], "do": "score"}))
    rt.start({})
    assert rt.starts[0].input == {"a": 1}


def test_a_child_execution_of_an_item_reports_its_item_back() -> None:
    child = compile_workflow({"id": "score", "nodes": [{"id": "done", "type": "end"}], "edges": []})
    link = ParentLink(EX, "wf", "each", 1, None, 3)
    # A lone end runs in the start's step: the child ends there.
    ended = step(child, None, StartExecution("s", "ex.each[3]", T0, "score", 1, {}, None, link))
    (finished,) = [o for o in ended.outgoing if isinstance(o, ChildFinished)]
    assert (finished.execution_id, finished.node_id, finished.item) == (EX, "each", 3)


# Stops: timeout, cancel, a failing execution


def test_a_timeout_fails_the_attempt_and_cancels_its_children() -> None:
    wf = foreach_workflow({"items": list(range(3)), "do": "score", "concurrency": 2}, timeout="1m")
    rt = Runtime(wf)
    rt.start({})
    assert rt.state is not None and "each/1/timeout" in rt.state.timers
    rt.fire("each/1/timeout")
    assert rt.state.status == ExecutionStatus.FAILED
    assert rt.state.nodes["each"].error == NodeError(
        "Timeout", "attempt 1 did not finish within 60000 ms", "each"
    )
    assert [c.execution_id for c in rt.cancelled] == ["ex.each[0]", "ex.each[1]"]
    assert rt.state.children == {} and rt.state.foreach == {}


def test_a_cancel_drops_the_items_and_cancels_the_children() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(150)), "do": "score", "concurrency": 3}))
    rt.start({})
    while rt.state is not None and rt.state.foreach["each"].chunks == 0:
        start = rt.starts.pop(0)
        rt.send(rt.child_finished(start, ExecutionStatus.COMPLETED, 1))
    rt.send(CancelExecution("cancel", EX, rt.tick(), "enough", "ops"))
    assert rt.state is not None and rt.state.status == ExecutionStatus.CANCELLED
    assert rt.state.nodes["each"].status == NodeStatus.CANCELLED
    assert rt.dropped == [DropItems(EX, "each", 1, 1)]
    assert [c.execution_id for c in rt.cancelled] == [s.execution_id for s in rt.starts]
    assert rt.state.foreach == {} and rt.state.children == {}


def test_a_failing_execution_starts_no_new_item_and_cancels_the_foreach_once_drained() -> None:
    wf = compile_workflow(
        {
            "id": "wf",
            "nodes": [
                {"id": "fan", "type": "parallel"},
                {
                    "id": "each",
                    "type": "foreach",
                    "params": {"items": list(range(20)), "do": SCORE, "concurrency": 2},
                },
                {"id": "other", "type": "task", "params": {"handler": "h.other"}},
                {"id": "both", "type": "join"},
                {"id": "done", "type": "end"},
            ],
            "edges": [
                {"from": "fan", "to": "each"},
                {"from": "fan", "to": "other"},
                {"from": "each", "to": "both"},
                {"from": "other", "to": "both"},
                {"from": "both", "to": "done"},
            ],
        }
    )
    rt = Runtime(wf)
    rt.start({})
    other = next(r for r in rt.tasks if r.node_id == "other")
    rt.tasks.remove(other)
    rt.send(rt.failed(other, NodeError("ValueError", "no")))
    assert (
        rt.state is not None
        and rt.state.status == ExecutionStatus.RUNNING
        and rt.state.error is not None
    )
    rt.answer(rt.task(0), 0)
    assert [r.item for r in rt.tasks] == [1]
    rt.answer(rt.task(1), 1)
    assert rt.state.status == ExecutionStatus.FAILED
    assert rt.state.nodes["each"].status == NodeStatus.CANCELLED
    assert rt.state.foreach == {}


def test_item_results_wait_out_a_pause() -> None:
    rt = Runtime(foreach_workflow({"items": [1, 2], "do": SCORE}))
    rt.start({})
    rt.send(PauseExecution("pause", EX, rt.tick()))
    first, second = rt.tasks
    rt.tasks.clear()
    rt.send(rt.completed(first, "a"))
    rt.send(rt.completed(second, "b"))
    assert rt.collects == []
    rt.send(ResumeExecution("resume", EX, rt.tick()))
    assert rt.state is not None and rt.state.output == {"out": ["a", "b"]}


# Collecting


def test_a_runtime_that_cannot_collect_fails_the_attempt() -> None:
    rt = Runtime(foreach_workflow({"items": [1], "do": SCORE}), collect=False)
    rt.start({})
    rt.answer_all(lambda _: "x")
    assert len(rt.collects) == 1
    too_big = NodeError("ItemsTooLarge", "the results exceed 8 MiB")
    rt.send(ItemsCollected("c", EX, rt.tick(), "each", 1, (), error=too_big))
    assert rt.state is not None and rt.state.status == ExecutionStatus.FAILED
    assert rt.state.nodes["each"].error == NodeError(
        "ItemsTooLarge", "the results exceed 8 MiB", "each"
    )
    assert rt.chunks == {}


def test_a_lost_chunk_fails_the_attempt_rather_than_shorten_the_result() -> None:
    rt = Runtime(foreach_workflow({"items": list(range(250)), "do": SCORE}), collect=False)
    rt.start({})
    rt.answer_all(lambda _: 0)
    rt.send(rt.collected(rt.collects[0], skip=1))
    assert rt.state is not None and rt.state.status == ExecutionStatus.FAILED
    error = rt.state.nodes["each"].error
    assert error == NodeError(
        "ItemsIncomplete",
        "collected 150 results and 0 errors; expected 250 results and 0 errors",
        "each",
    )


# Redrive


def test_a_redrive_runs_the_foreach_again_over_patched_items() -> None:
    rt = Runtime(foreach_workflow({"items": [1, 2, 3], "do": SCORE}))
    rt.start({})
    request = rt.tasks.pop(0)
    rt.send(rt.failed(request, NodeError("ValueError", "bad")))
    rt.tasks.clear()
    assert rt.state is not None and rt.state.status == ExecutionStatus.FAILED
    refused = RedriveNode("r0", EX, rt.tick(), "each", "ops", {"not": "a list"})
    assert rt.ignored(refused) == "a foreach node's patched input is its list of items"
    rt.send(RedriveNode("r1", EX, rt.tick(), "each", "ops", [10, 20]))
    assert [(r.attempt, r.input["x"]) for r in rt.tasks] == [(2, 10), (2, 20)]
    rt.answer_all(doubled)
    assert rt.state.status == ExecutionStatus.COMPLETED
    assert rt.state.output == {"out": [20, 40]}
    assert rt.state.nodes["each"].input == [10, 20]


def test_a_redrive_without_a_patch_reruns_the_recorded_items() -> None:
    rt = Runtime(foreach_workflow({"items": "${input.xs}", "do": SCORE}))
    rt.start({"xs": [4, 5]})
    rt.send(rt.failed(rt.tasks.pop(0), NodeError("ValueError", "bad")))
    rt.tasks.clear()
    rt.send(RedriveNode("r1", EX, rt.tick(), "each", "ops"))
    rt.answer_all(doubled)
    assert rt.state is not None and rt.state.output == {"out": [8, 10]}


# Dry run


@pytest.mark.parametrize("do", [SCORE, "score"])
def test_a_dry_run_answers_every_item_and_collects_them(do: Any) -> None:
    wf = foreach_workflow({"items": list(range(120)), "do": do, "concurrency": 8})
    *_, (_, last) = dry_run(wf, {}, parse_answers({"each": "ok"}))
    assert last.state is not None and last.state.status == ExecutionStatus.COMPLETED
    assert last.state.output == {"out": ["ok"] * 120}


CLASSIFY = {
    "type": "classify",
    "params": {"connection": "m", "model": "small", "text": "${item}", "labels": ["a", "b"]},
}


def labelled(request: TaskRequest) -> Any:
    """A classify item's answer as the executor gives it: its usage and what it cost."""
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    return {"label": "a", "model": "small", "usage": usage, "cost": 0.001}


def test_a_foreach_of_model_calls_adds_its_items_tokens_and_cost_to_the_execution_s() -> None:
    wf = foreach_workflow({"items": ["x", "y", "z"], "do": CLASSIFY})
    rt = Runtime(wf)
    rt.start({})
    rt.answer_all(labelled)
    assert rt.state is not None and rt.state.status == ExecutionStatus.COMPLETED
    cost = execution_cost(rt.state.nodes.values(), wf)
    assert cost["money"] == 0.003
    assert cost["tokens"] == {
        "small": {"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36}
    }


def test_a_foreach_of_model_calls_past_the_budget_fails_the_execution_at_its_end() -> None:
    department = compile_department(
        {"kind": "Department", "name": "d", "settings": {"budget": {"per_execution": 0.002}}}
    )
    wf = with_defaults(foreach_workflow({"items": ["x", "y", "z"], "do": CLASSIFY}), department)
    rt = Runtime(wf)
    rt.start({})
    rt.answer_all(labelled)
    assert rt.state is not None and rt.state.status == ExecutionStatus.FAILED
    assert rt.state.error is not None and rt.state.error.type == "budget.exceeded"
    assert rt.state.error.node_id == "each"
    assert rt.state.nodes["each"].status == NodeStatus.COMPLETED
    assert "done" not in rt.state.nodes
