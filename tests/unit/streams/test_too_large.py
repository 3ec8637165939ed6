"""What the orchestrator applies in place of a result too large to store: its node's failure."""

from __future__ import annotations

from braidflow.engine import (
    ApprovalDecided,
    ChildFinished,
    ItemsCollected,
    NodeCompleted,
    NodeError,
    NodeFailed,
)
from braidflow.streams.orchestrator import as_failure

T0 = 1_795_000_000_000
TOO_LARGE = NodeError("StateTooLarge", "the execution's state would be 2,000,000 bytes")


def test_a_task_output_becomes_the_failure_of_its_attempt_or_item() -> None:
    done = NodeCompleted("ex:a:2/completed", "ex", T0, "a", 2, {"blob": "x"}, item=7)
    assert as_failure(done, TOO_LARGE) == NodeFailed(
        "ex:a:2/completed/too-large", "ex", T0, "a", 2, NodeError(TOO_LARGE.type, TOO_LARGE.message, "a"), 7
    )  # fmt: skip


def test_collected_results_become_a_collection_that_failed() -> None:
    collected = ItemsCollected("ex/each/1/collected", "ex", T0, "each", 1, ("x",) * 3)
    failed = as_failure(collected, TOO_LARGE)
    assert isinstance(failed, ItemsCollected) and failed.results == () and failed.errors == ()
    assert failed.error == NodeError(TOO_LARGE.type, TOO_LARGE.message, "each")
    assert failed.id == "ex/each/1/collected/too-large"


def test_a_childs_output_becomes_the_childs_failure() -> None:
    finished = ChildFinished("c/finished", "ex", T0, "call", "c", "completed", {"blob": "x"})
    failed = as_failure(finished, TOO_LARGE)
    assert isinstance(failed, ChildFinished)
    assert (failed.status, failed.output, failed.error) == ("failed", None, TOO_LARGE)


def test_anything_else_has_no_node_to_fail() -> None:
    decided = ApprovalDecided("d", "ex", T0, "ask", "d-1", "approve", "ada", None, {"x": 1})
    assert as_failure(decided, TOO_LARGE) is None
