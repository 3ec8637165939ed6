"""The bookkeeping of a foreach node's items: which run, which results wait, which chunks are due.

Results leave the state in chunks of ITEMS_PER_CHUNK items, strictly in
order, as soon as every item of a chunk is in; the runtime keeps the chunks
until the attempt collects them. Items are dispatched in order and only
within a window past the first chunk not yet flushed, so a slow item holds
up at most about ITEMS_PER_CHUNK + concurrency results in the state.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from braidflow.engine.messages import ItemError, ItemsChunk, ItemsCollected, NodeError
from braidflow.engine.state import ForeachProgress

ITEMS_PER_CHUNK = 100
DEFAULT_CONCURRENCY = 10


def chunk_count(total: int) -> int:
    return -(-total // ITEMS_PER_CHUNK)


def may_dispatch(progress: ForeachProgress, concurrency: int) -> bool:
    """Whether the next item may start now.

    Within the window, completions in about item order never wait for it: only
    a straggler holding up its chunk stops dispatch, which bounds the results
    the state holds meanwhile.
    """
    window_end = (progress.chunks + 1) * ITEMS_PER_CHUNK + concurrency
    return (
        progress.next < progress.total
        and progress.next < window_end
        and len(progress.running) < concurrency
    )


def dispatched(progress: ForeachProgress) -> ForeachProgress:
    """The next item is on its way. Items start in order, so `running` stays sorted."""
    return replace(progress, next=progress.next + 1, running=(*progress.running, progress.next))


def settled(
    progress: ForeachProgress, index: int, output: Any, failure: ItemError | None
) -> ForeachProgress:
    """Item `index` finished with `output`, or failed with `failure`."""
    running = tuple(i for i in progress.running if i != index)
    if failure is None:
        pending = list(progress.pending)
        insort(pending, (index, output), key=lambda result: result[0])
        return replace(progress, running=running, pending=tuple(pending))
    failures = list(progress.failures)
    insort(failures, failure, key=lambda error: error.index)
    return replace(progress, running=running, failures=tuple(failures), failed=progress.failed + 1)


def flush(progress: ForeachProgress, execution_id: str) -> tuple[ForeachProgress, list[ItemsChunk]]:
    """Take every chunk whose items are all in out of the state, in chunk order."""
    chunks: list[ItemsChunk] = []
    while _chunk_done(progress):
        start = progress.chunks * ITEMS_PER_CHUNK
        end = min(start + ITEMS_PER_CHUNK, progress.total)
        cut = bisect_left(progress.pending, end, key=lambda result: result[0])
        failed_cut = bisect_left(progress.failures, end, key=lambda error: error.index)
        results: list[Any] = [None] * (end - start)
        for index, output in progress.pending[:cut]:
            results[index - start] = output
        chunks.append(
            ItemsChunk(
                execution_id,
                progress.node_id,
                progress.attempt,
                progress.chunks,
                tuple(results),
                progress.failures[:failed_cut],
            )
        )
        progress = replace(
            progress,
            pending=progress.pending[cut:],
            failures=progress.failures[failed_cut:],
            chunks=progress.chunks + 1,
        )
    return progress, chunks


def _chunk_done(progress: ForeachProgress) -> bool:
    """Whether every item of the first chunk not yet flushed is in."""
    start = progress.chunks * ITEMS_PER_CHUNK
    if start >= progress.total:
        return False
    end = min(start + ITEMS_PER_CHUNK, progress.total)
    return progress.next >= end and (not progress.running or progress.running[0] >= end)


def collected(progress: ForeachProgress) -> bool:
    """Whether every item is in and every chunk flushed: the results may be collected."""
    return (
        progress.next == progress.total
        and not progress.running
        and progress.chunks == chunk_count(progress.total)
    )


def collection_error(progress: ForeachProgress, answer: ItemsCollected) -> NodeError | None:
    """Why the runtime's answer does not account for every item, if it does not.

    A lost chunk must fail the attempt rather than pass for a shorter result.
    """
    if len(answer.results) == progress.total and len(answer.errors) == progress.failed:
        return None
    message = (
        f"collected {len(answer.results)} results and {len(answer.errors)} errors;"
        f" expected {progress.total} results and {progress.failed} errors"
    )
    return NodeError("ItemsIncomplete", message, progress.node_id)


def foreach_output(
    results: Sequence[Any], errors: Sequence[ItemError], continue_on_error: bool
) -> Any:
    """A foreach node's output: the results, with the errors when failed items are allowed."""
    if not continue_on_error:
        return list(results)
    return {
        "results": list(results),
        "errors": [{"index": e.index, "type": e.type, "message": e.message} for e in errors],
    }
