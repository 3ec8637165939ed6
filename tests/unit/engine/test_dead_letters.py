"""Every node that fails its execution is dead-lettered, whatever its retry settings,
and can be redriven from there with a patched input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from engine_driver import applied, assert_ignored, events, of_type, settle, workflow

from braidflow.engine import (
    ChildFinished,
    DeadLetterNode,
    ExecutionState,
    ItemsCollected,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    ParentLink,
    RedriveNode,
    StartExecution,
    StepResult,
    TaskRequest,
    TimerFired,
    step,
)
from braidflow.topology import Workflow, compile_workflow

EX = "ex"
T0 = 1_750_000_000_000
ORDER_CHAIN = Path(__file__).parents[3] / "examples" / "order-chain.yaml"
SHORT = {"sku": "gadget-7", "quantity": 5}


def order_chain() -> Workflow:
    return compile_workflow(yaml.safe_load(ORDER_CHAIN.read_text()))


def start(wf: Workflow, input_: Any = None, parent: ParentLink | None = None) -> StepResult:
    return applied(wf, None, StartExecution("start", EX, T0, wf.id, 1, input_, None, parent))


def done(node_id: str, attempt: int, at: int, output: Any = "ok") -> NodeCompleted:
    return NodeCompleted(f"{EX}:{node_id}:{attempt}/done", EX, at, node_id, attempt, output)


def failed(node_id: str, attempt: int, at: int, msg: str = "boom") -> NodeFailed:
    error = NodeError("ValueError", msg)
    return NodeFailed(f"{EX}:{node_id}:{attempt}/failed", EX, at, node_id, attempt, error)


STOCK = {"status": 200, "body": {"unit_price_cents": 1250, "available": 3, "name": "Gadget"}}


def failed_at_price() -> tuple[Workflow, ExecutionState, list[Outgoing]]:
    """order-chain with too few in stock: `price` (a task without retry) fails once."""
    wf = order_chain()
    state = applied(wf, start(wf, SHORT).state, done("stock", 1, T0 + 1, STOCK)).state
    result = applied(wf, state, failed("price", 1, T0 + 2, "only 3 of gadget-7 in stock"))
    assert result.state is not None
    return wf, result.state, list(result.outgoing)


def test_a_task_without_retry_that_fails_the_execution_is_dead_lettered_once() -> None:
    wf, state, sent = failed_at_price()
    assert wf.nodes["price"].node.retry is None
    assert state.status == "failed"
    (letter,) = of_type(sent, DeadLetterNode)
    error = NodeError("ValueError", "only 3 of gadget-7 in stock", "price")
    assert letter == DeadLetterNode(
        f"{EX}/price/1/dead-letter",
        EX,
        "order-chain",
        1,
        "price",
        T0 + 2,
        {"sku": "gadget-7", "quantity": 5, "unit_price_cents": 1250, "available": 3},
        (error,),
        {
            "input": SHORT,
            "vars": {"base_url": "http://127.0.0.1:8090"},
            "event": None,
            "workflow_id": "order-chain",
            "version": 1,
        },
    )
    assert events(sent) == ["node.failed:price", "node.dead_lettered:price", "workflow.failed"]
    # Delivered again, the failure is ignored: no second dead letter.
    assert_ignored(wf, state, failed("price", 1, T0 + 2, "only 3 of gadget-7 in stock"))


def test_a_redrive_with_a_patched_input_completes_the_execution() -> None:
    wf, state, _ = failed_at_price()
    patched = {"sku": "gadget-7", "quantity": 3, "unit_price_cents": 1250, "available": 3}
    result = applied(wf, state, RedriveNode("r", EX, T0 + 10, "price", "ops", patched))
    (request,) = of_type(result.outgoing, TaskRequest)
    assert (request.node_id, request.attempt, request.input) == ("price", 2, patched)
    priced = {"total_cents": 3750, "discount_cents": 0}
    state = applied(wf, result.state, done("price", 2, T0 + 11, priced)).state
    placed = {"status": 201, "body": {"order_id": "ord-1"}}
    final, _ = settle(wf, applied(wf, state, done("place", 1, T0 + 12, placed)))
    assert final.status == "completed"
    assert final.output == {
        "order_id": "ord-1",
        "item": "Gadget",
        "quantity": 5,
        "total_cents": 3750,
        "discount_cents": 0,
    }


def test_a_redriven_node_that_fails_again_gets_a_dead_letter_of_its_new_attempt() -> None:
    wf, state, _ = failed_at_price()
    again = applied(wf, state, RedriveNode("r", EX, T0 + 10, "price")).state
    result = applied(wf, again, failed("price", 2, T0 + 11))
    (letter,) = of_type(result.outgoing, DeadLetterNode)
    assert letter.id == f"{EX}/price/2/dead-letter"
    assert [e.message for e in letter.errors] == ["only 3 of gadget-7 in stock", "boom"]


def test_an_http_node_that_exhausts_its_retries_is_dead_lettered_once_as_before() -> None:
    wf = order_chain()
    state = start(wf, {"sku": "nope", "quantity": 1}).state
    letters: list[DeadLetterNode] = []
    for attempt in (1, 2, 3):
        result = applied(wf, state, failed("stock", attempt, T0 + attempt))
        letters.extend(of_type(result.outgoing, DeadLetterNode))
        state = result.state
        assert state is not None
        if attempt < 3:
            ((timer, due),) = state.timers.items()
            state = applied(wf, state, _fired(timer, due)).state
    assert [(letter.node_id, len(letter.errors)) for letter in letters] == [("stock", 3)]
    assert state is not None and state.status == "failed"


def _fired(timer_id: str, at: int) -> TimerFired:
    return TimerFired(f"{EX}/timer/{timer_id}", EX, at, timer_id)


ON_ERROR = """
id: handled
nodes:
  - {id: charge, type: task, params: {handler: h}}
  - {id: sorry, type: end}
  - {id: done, type: end}
edges:
  - {from: charge, to: done}
  - {from: charge, to: sorry, on_error: true}
"""


def test_a_failure_its_on_error_edge_handles_is_not_dead_lettered() -> None:
    wf = workflow(ON_ERROR)
    result = applied(wf, start(wf).state, failed("charge", 1, T0 + 1))
    assert of_type(result.outgoing, DeadLetterNode) == []
    final, _ = settle(wf, result)
    assert final.status == "completed"


BOTH_FAIL = """
id: both-fail
nodes:
  - {id: split, type: parallel}
  - {id: a, type: task, params: {handler: h}}
  - {id: b, type: task, params: {handler: h}}
  - {id: both, type: join}
  - {id: done, type: end}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: a, to: both}
  - {from: b, to: both}
  - {from: both, to: done}
"""


def test_each_branch_that_fails_while_the_execution_drains_gets_its_own_dead_letter() -> None:
    wf = workflow(BOTH_FAIL)
    state, _ = settle(wf, start(wf))
    first = applied(wf, state, failed("a", 1, T0 + 1))
    second = applied(wf, first.state, failed("b", 1, T0 + 2))
    assert second.state is not None and second.state.status == "failed"
    letters = of_type([*first.outgoing, *second.outgoing], DeadLetterNode)
    assert [letter.node_id for letter in letters] == ["a", "b"]


CALLER = """
id: caller
nodes:
  - {id: call, type: subworkflow, params: {workflow: callee, input: {n: "${input.n}"}}}
  - {id: done, type: end, params: {output: {out: "${nodes.call.output}"}}}
edges:
  - {from: call, to: done}
"""
CALLEE = """
id: callee
nodes:
  - {id: work, type: task, params: {handler: h, input: "${input}"}}
  - {id: done, type: end, params: {output: {out: "${nodes.work.output}"}}}
edges:
  - {from: work, to: done}
"""


def test_a_failed_child_and_its_parents_node_each_leave_a_dead_letter() -> None:
    """The child's letter redrives the child alone; the parent's runs a new child."""
    callee = workflow(CALLEE)
    link = ParentLink(EX, "caller", "call", 1, None)
    child = step(callee, None, StartExecution("c", f"{EX}.call", T0, "callee", 1, {"n": 1}, None,
                                              link))  # fmt: skip
    assert child.state is not None
    child_failed = step(
        callee,
        child.state,
        NodeFailed("cf", f"{EX}.call", T0 + 1, "work", 1, NodeError("E", "boom")),
    )
    (child_letter,) = of_type(child_failed.outgoing, DeadLetterNode)
    assert (child_letter.execution_id, child_letter.node_id) == (f"{EX}.call", "work")
    (finished,) = of_type(child_failed.outgoing, ChildFinished)

    caller = workflow(CALLER)
    state, _ = settle(caller, start(caller, {"n": 1}))
    parent_failed = applied(caller, state, finished)
    (letter,) = of_type(parent_failed.outgoing, DeadLetterNode)
    assert (letter.node_id, letter.input) == ("call", {"n": 1})

    redriven = applied(caller, parent_failed.state, RedriveNode("r", EX, T0 + 5, "call",
                                                                input={"n": 2}))  # fmt: skip
    (again,) = of_type(redriven.outgoing, StartExecution)
    assert (again.execution_id, again.input) == (f"{EX}.call.2", {"n": 2})
    answer = ChildFinished("f2", EX, T0 + 6, "call", f"{EX}.call.2", "completed", {"ok": 2})
    final, _ = settle(caller, applied(caller, redriven.state, answer))
    assert (final.status, final.output) == ("completed", {"out": {"ok": 2}})


FOREACH = """
id: batch
nodes:
  - id: each
    type: foreach
    params:
      items: "${input.xs}"
      do: {type: task, params: {handler: h, input: {x: "${item}"}}}
  - {id: done, type: end, params: {output: {out: "${nodes.each.output}"}}}
edges:
  - {from: each, to: done}
"""


def test_a_failed_foreach_item_dead_letters_the_foreach_whose_redrive_takes_new_items() -> None:
    wf = workflow(FOREACH)
    state, _ = settle(wf, start(wf, {"xs": [1, 2]}))
    item = NodeFailed("i1", EX, T0 + 1, "each", 1, NodeError("E", "bad item"), 1)
    result = applied(wf, state, item)
    assert result.state is not None and result.state.status == "failed"
    (letter,) = of_type(result.outgoing, DeadLetterNode)
    assert (letter.node_id, letter.input) == ("each", [1, 2])
    assert letter.errors == (NodeError("E", "item 1: bad item", "each"),)

    redriven = applied(wf, result.state, RedriveNode("r", EX, T0 + 2, "each", input=[1, 3]))
    requests = of_type(redriven.outgoing, TaskRequest)
    assert [(r.attempt, r.item, r.input) for r in requests] == [(2, 0, {"x": 1}), (2, 1, {"x": 3})]
    state = redriven.state
    for index, x in ((0, 1), (1, 3)):
        state = applied(
            wf, state, NodeCompleted(f"d{index}", EX, T0 + 3, "each", 2, x, index)
        ).state
    collected = ItemsCollected("c", EX, T0 + 4, "each", 2, (1, 3))
    final, _ = settle(wf, applied(wf, state, collected))
    assert final.status == "completed"


def test_a_redrive_runs_the_other_branch_that_failed_beside_it_again() -> None:
    """Else the join would wait forever for a branch whose letter no one may redrive."""
    wf = workflow(BOTH_FAIL)
    state, _ = settle(wf, start(wf))
    state = applied(wf, state, failed("a", 1, T0 + 1)).state
    state = applied(wf, state, failed("b", 1, T0 + 2)).state
    redriven = applied(wf, state, RedriveNode("r", EX, T0 + 3, "a"))
    requests = of_type(redriven.outgoing, TaskRequest)
    assert sorted((r.node_id, r.attempt) for r in requests) == [("a", 2), ("b", 2)]
    state = applied(wf, redriven.state, done("a", 2, T0 + 4)).state
    final, _ = settle(wf, applied(wf, state, done("b", 2, T0 + 5)))
    assert final.status == "completed"
