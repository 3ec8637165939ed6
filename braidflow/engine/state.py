"""Execution state: what the `executions` table holds for one execution."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from braidflow.access import DEFAULT_TENANT
from braidflow.engine.frozen import quick_init
from braidflow.engine.messages import ItemError, NodeError, ParentLink, Transition


class ExecutionStatus(StrEnum):
    """Where an execution stands. Avro and the API carry the value, a plain string."""

    ACCEPTED = "accepted"
    """Answered with its id, its start not yet applied: only the execution index says it."""
    QUEUED = "queued"
    """Waiting for a slot under its department's `max_concurrent_executions` (see `admission`)."""
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARKED = "parked"
    """Stopped by a node that failed for good under `on_failure: park`: not terminal, since a
    redrive takes it up again."""


TERMINAL = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
"""The statuses an execution ends in (a redrive may still reopen a failed one)."""


class NodeStatus(StrEnum):
    """Where one node's run stands (see `NodeRun`)."""

    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


IN_FLIGHT = frozenset({NodeStatus.RUNNING, NodeStatus.WAITING})
"""The statuses of a node run that an ending execution cancels (work, or a wait, in flight)."""


def iso_time(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC text, e.g. `2026-11-22T01:14:02.123Z`."""
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


# Every parked execution's delay names its due time twice (when set, when fired), and those
# of one second come together: 2.6 -> 0.6 us a call with the second's text kept.
@functools.lru_cache(maxsize=64)
def _iso_second(seconds: int) -> str:
    # Through datetime: it refuses the years ISO-8601's four digits cannot hold.
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds")[:19]


@quick_init
@dataclass(frozen=True, slots=True)
class NodeRun:
    """One node's run within an execution.

    Status: running (work in flight), waiting (until an event, a timer, a
    decision, a child execution, or the backoff before its next attempt),
    completed, failed, skipped, cancelled. `error` is the last failure;
    `errors` every failed attempt's error, in order.
    """

    node_id: str
    status: str
    attempt: int = 0
    input: Any = None
    output: Any = None
    error: NodeError | None = None
    started_at: int | None = None
    completed_at: int | None = None
    errors: tuple[NodeError, ...] = ()


@quick_init
@dataclass(frozen=True, slots=True)
class ControlAction:
    """Something done to an execution from outside: cancel, pause, resume, redrive, approval."""

    action: str
    by: str
    at: int
    node_id: str | None = None
    reason: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class JoinState:
    """Arrivals at a node with several inbound edges, by edge index, in arrival order.

    `taken` edges brought a branch; `dead` edges lie on a path a decision did not
    take. Once `fired`, later arrivals are not recorded: the node runs once.
    """

    node_id: str
    taken: tuple[int, ...] = ()
    dead: tuple[int, ...] = ()
    fired: bool = False


@quick_init
@dataclass(frozen=True, slots=True)
class ForeachProgress:
    """A foreach node's attempt in flight: items `[0, next)` dispatched; `running` await results.

    `pending` holds results `(index, output)` and `failures` the failed items not
    yet flushed in a chunk, both sorted by index: the runtime keeps the flushed
    ones, so the state never holds all results. `chunks` counts the chunks
    flushed so far (always `0 .. chunks - 1`), `failed` the items failed so far
    (with `continue_on_error`).
    """

    node_id: str
    attempt: int
    total: int
    next: int = 0
    running: tuple[int, ...] = ()
    pending: tuple[tuple[int, Any], ...] = ()
    failures: tuple[ItemError, ...] = ()
    chunks: int = 0
    failed: int = 0


@quick_init
@dataclass(frozen=True, slots=True)
class LoopProgress:
    """A loop node's passes: `passes` started so far; the last one's child is in `children`."""

    node_id: str
    passes: int = 0


@quick_init
@dataclass(frozen=True, slots=True)
class ExecutionState:
    """One execution. `error` set while `status` is running means failing: in-flight work drains.

    `timers` maps the id of each pending timer to when it is due (epoch ms); the
    runtime keeps a row per timer and sends `TimerFired` when it comes due.
    While `paused`, arriving transitions wait in `held`. `parent` links a child
    execution to the node that started it; `children` maps each subworkflow
    node waiting for a child to the child's execution id (`<node>[<index>]`
    for a foreach item's child). `control` records what people did to the
    execution, in order. `foreach` tracks each foreach node running its items,
    `loops` each loop node running its passes.
    """

    execution_id: str
    workflow_id: str
    workflow_version: int
    status: str
    started_at: int
    updated_at: int
    input: Any = None
    event: Mapping[str, Any] | None = None
    output: Any = None
    error: NodeError | None = None
    completed_at: int | None = None
    nodes: Mapping[str, NodeRun] = field(default_factory=dict)
    joins: Mapping[str, JoinState] = field(default_factory=dict)
    timers: Mapping[str, int] = field(default_factory=dict)
    paused: bool = False
    held: tuple[Transition, ...] = ()
    parent: ParentLink | None = None
    children: Mapping[str, str] = field(default_factory=dict)
    control: tuple[ControlAction, ...] = ()
    foreach: Mapping[str, ForeachProgress] = field(default_factory=dict)
    loops: Mapping[str, LoopProgress] = field(default_factory=dict)
    # The department's shared context as it was when the execution started (`dept.*`).
    dept: Mapping[str, Any] | None = None
    # Whose execution this is: everything it starts, publishes or waits for stays in it.
    tenant: str = DEFAULT_TENANT
    # The admission key (`"<tenant>/<department>"`) of an execution its department's cap
    # queued; its end releases the slot. None: the department has no cap.
    admission: str | None = None
    # The W3C traceparent the execution arrived with (engine/trace_context.py); None: the
    # execution's span is the root of a trace of its own.
    traceparent: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL
