"""`?wait=`: answer once an execution ends, or when the wait runs out, woken by the
lifecycle feed (no polling: see braidflow/connectors/lifecycle_feed.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from braidflow.connectors.api.backend import Backend
from braidflow.connectors.api.errors import BadRequest, Unavailable
from braidflow.connectors.lifecycle_feed import LifecycleFeed
from braidflow.engine.state import TERMINAL, ExecutionStatus
from braidflow.topology.durations import parse_duration

MAX_WAIT_MS = 60_000
WAIT_PATTERN = r"^[0-9]+(ms|s|m)$"
ENDED = frozenset({*TERMINAL, ExecutionStatus.PARKED})
"""Statuses a wait ends at: the execution's end, or parked for a redrive (it may go on then)."""
ENDED_EVENTS = frozenset(f"workflow.{status.value}" for status in ENDED)


def wait_query(query: Mapping[str, str]) -> float | None:
    """The `wait` query parameter in seconds (None when absent): a duration (`500ms`, `30s`,
    `2m`) of at most 60 s; BadRequest naming `wait` otherwise."""
    raw = query.get("wait")
    if raw is None:
        return None
    try:
        ms = parse_duration(raw)
    except ValueError:
        raise BadRequest(
            f"wait: {raw!r} is not a duration (e.g. 500ms, 30s, 1m)", field="wait"
        ) from None
    if ms > MAX_WAIT_MS:
        raise BadRequest(f"wait: {raw} is over the most a request waits, 60s", field="wait")
    return ms / 1000


async def wait_for_end(
    backend: Backend, feed: LifecycleFeed, execution_id: str, timeout_s: float
) -> bool:
    """Whether execution `execution_id` has ended (see ENDED) within `timeout_s`, as this
    worker's lifecycle feed tells it, or its execution index once (for an end from before
    the feed): woken only when its events are applied."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    # Taken before the reads: an event applied in between sets it.
    signal = feed.execution_signal(execution_id)
    try:
        summary = await backend.execution_summary(execution_id)
    except Unavailable:
        summary = None  # the index is behind: the feed still tells the end
    if summary is not None and summary["status"] in ENDED:
        return True
    while True:
        if feed.ended(execution_id, ENDED_EVENTS):
            return True
        left = deadline - loop.time()
        if left <= 0 or feed.closed:
            return False
        try:
            async with asyncio.timeout(left):
                await signal.wait()
        except TimeoutError:
            return False
        signal = feed.execution_signal(execution_id)
