"""W3C Trace Context for executions: the `traceparent` an execution arrived with, and the
span ids of the execution and of each node run, derived from their ids.

Deriving the ids (rather than drawing them at random) is what lets any worker name a
span without holding anything in memory: the worker that applies the step ending a node
run emits its span, with the start time the state recorded, and the records the node
run sent earlier (its task request, a child's start) already named that span as their
parent. An execution that arrived without a traceparent gets a trace of its own, its
trace id derived from the execution id.

Nothing here knows OpenTelemetry: the runtime turns `ended_spans` into spans.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from braidflow.engine import ids
from braidflow.engine.messages import LifecycleEvent, NodeError, Outgoing
from braidflow.engine.state import IN_FLIGHT, ExecutionState, ExecutionStatus, NodeRun, NodeStatus

HEADER = "traceparent"
"""The name of the record header and HTTP header, and of the CloudEvents extension."""

_HEX = frozenset("0123456789abcdef")
_SAMPLED = "01"
# Parking ends the execution's span (or redrive's) too: a redrive may open the next one.
_EXECUTION_ENDS = frozenset(
    {"workflow.completed", "workflow.failed", "workflow.cancelled", "workflow.parked"}
)
_NODE_ENDS = frozenset({"node.completed", "node.failed", "node.retrying"})


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A valid `traceparent`: the trace, the caller's span and the trace flags, lower-case hex."""

    trace_id: str
    span_id: str
    flags: str

    @property
    def header(self) -> str:
        """The value as sent: version 00, whatever version it was read from."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and _HEX.issuperset(text) and text != "0" * length


def parse_traceparent(value: Any) -> TraceParent | None:
    """The traceparent `value` holds, or None when it holds none that is valid.

    As W3C Trace Context asks: lower-case hex only, a trace id and a span id that are not
    all zeros, version `ff` refused, version 00 exactly 55 characters; a later version may
    append fields after a `-`, which are dropped.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) < 55 or (len(text) > 55 and text[55] != "-"):
        return None
    version, trace_id, span_id, flags = text[:2], text[3:35], text[36:52], text[53:55]
    if text[2] != "-" or text[35] != "-" or text[52] != "-":
        return None
    if not _HEX.issuperset(version) or version == "ff" or (version == "00" and len(text) != 55):
        return None
    if not (_is_hex(trace_id, 32) and _is_hex(span_id, 16) and _HEX.issuperset(flags)):
        return None
    return TraceParent(trace_id, span_id, flags)


def valid_traceparent(value: Any) -> str | None:
    """`value` as a version-00 traceparent when it is a valid one, else None (ignored)."""
    parsed = parse_traceparent(value)
    return None if parsed is None else parsed.header


def derived_id(hex_digits: int, *parts: str) -> str:
    """An id of `hex_digits` hex digits derived from `parts`, never all zeros."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:hex_digits]
    return digest if digest != "0" * hex_digits else "0" * (hex_digits - 1) + "1"


@dataclass(frozen=True, slots=True)
class ExecutionTrace:
    """Where an execution's spans sit: its trace, its own span, and the span that called it
    (None: the execution's span is the root of its trace)."""

    execution_id: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    flags: str
    # A node run's span id is asked for by its task request, its events and its span: kept
    # with the trace, it lives as long as the trace's cache entry does (`_trace_of`), one an
    # execution in flight, rather than in a cache of its own that 4,000 executions at once
    # overflow (a sha256 each time).
    _node_spans: dict[tuple[str, int], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @staticmethod
    def of(execution_id: str, traceparent: str | None) -> ExecutionTrace:
        """The trace of an execution that arrived with `traceparent` (None: a new trace)."""
        return _trace_of(execution_id, traceparent)

    @property
    def header(self) -> str:
        """The traceparent naming the execution's span as the parent."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def node_span_id(self, node_id: str, attempt: int) -> str:
        """The span of attempt `attempt` of node `node_id`."""
        key = (node_id, attempt)
        span_id = self._node_spans.get(key)
        if span_id is None:
            span_id = derived_id(16, "node", self.execution_id, node_id, str(attempt))
            self._node_spans[key] = span_id
        return span_id

    def node_header(self, node_id: str, attempt: int) -> str:
        """The traceparent naming that node run's span as the parent."""
        return f"00-{self.trace_id}-{self.node_span_id(node_id, attempt)}-{self.flags}"

    def redrive_span_id(self, redrive: int) -> str:
        """The span of the execution's run after its `redrive`-th redrive (1, 2, ...)."""
        return derived_id(16, "redrive", self.execution_id, str(redrive))

    def segment_span_id(self, redrive: int) -> str:
        """The execution's span (0) or the span of its run after its `redrive`-th redrive."""
        return self.span_id if redrive == 0 else self.redrive_span_id(redrive)


# Every step of an execution asks again; the hashes are most of a step's cost of traces.
# One an execution in flight, with its node runs' span ids (the runtime bench's 4,000 at once
# fit, in 5.4 MiB); 16,384 ended ones held 6 MiB once parked executions had fired.
@functools.lru_cache(maxsize=4_096)
def _trace_of(execution_id: str, traceparent: str | None) -> ExecutionTrace:
    incoming = parse_traceparent(traceparent)
    span_id = derived_id(16, "execution", execution_id)
    if incoming is None:
        trace_id = derived_id(32, "trace", execution_id)
        return ExecutionTrace(execution_id, trace_id, span_id, None, _SAMPLED)
    return ExecutionTrace(
        execution_id, incoming.trace_id, span_id, incoming.span_id, incoming.flags
    )


def execution_trace(state: ExecutionState) -> ExecutionTrace:
    """The trace of the execution `state` holds."""
    return _trace_of(state.execution_id, state.traceparent)


def record_traceparent(
    message: Outgoing, trace: ExecutionTrace, nodes: Mapping[str, NodeRun]
) -> str:
    """The `traceparent` header of a record an execution sends: the span of the node run it
    comes from, else the execution's span. A child's start and a task request carry the one
    the engine gave them."""
    if type(message) is LifecycleEvent:
        # Most of a step's records: read directly, as `getattr` of a field it lacks raises.
        if message.execution_id != trace.execution_id:
            return trace.header
        node_id, attempt = message.node_id, message.attempt
    else:
        carried = getattr(message, "traceparent", None)
        if carried is not None:
            return str(carried)
        if getattr(message, "execution_id", None) != trace.execution_id:
            # A notice to the parent, a cancel to a child: from the execution as a whole.
            return trace.header
        node_id = getattr(message, "node_id", None)
        attempt = getattr(message, "attempt", None)
    if node_id is None:
        return trace.header
    if attempt is None:
        run = nodes.get(node_id)
        attempt = run.attempt if run is not None else None
    return trace.node_header(node_id, attempt) if attempt else trace.header


def timer_traceparent(trace: ExecutionTrace, timer_id: str) -> str:
    """The `traceparent` header of timer `timer_id`'s TimerFired, sent by the timer scanner.

    A node run's own timer (its timeout, a delay, an approval's or a wait's deadline) fires
    within that node run: its span. A retry's backoff (the failed attempt's span has ended;
    the next attempt is the execution's child), a join's timeout and the execution's own
    timers (timeout, SLA) come from the execution's span.
    """
    try:
        node_id, attempt, kind = ids.parse_node_timer(timer_id)
    except ValueError:
        return trace.header
    if attempt is None or kind == "retry":
        return trace.header
    return trace.node_header(node_id, attempt)


@dataclass(frozen=True, slots=True)
class SpanEnd:
    """A span a step ended: an execution's or a node run's, with its times in epoch ms.

    `status` is the node run's or the execution's (completed, failed, retrying, cancelled);
    `error` set: the span ended in error.
    """

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    flags: str
    start_ms: int
    end_ms: int
    status: str
    attributes: Mapping[str, str | int]
    error: NodeError | None = None

    @property
    def sampled(self) -> bool:
        return int(self.flags, 16) & 1 == 1


def ended_spans(
    before: ExecutionState | None,
    after: ExecutionState,
    outgoing: Sequence[Outgoing],
    node_types: Mapping[str, str] | None = None,
) -> list[SpanEnd]:
    """The spans the step from `before` to `after` (which sent `outgoing`) ended.

    A node run's span ends when its attempt completes, fails or is retried, and when the
    execution's end cancels it; the execution's span when the execution completes, fails,
    is cancelled or parks. A redrive opens a span of its own (`redrive <workflow>`, a child
    of the execution's span, from the redrive to the next end), so that no span ends twice;
    node runs that start after it are its children (`redrive_segments`).
    """
    trace = execution_trace(after)
    redrives = redrive_times(after)
    common: dict[str, str | int] = {
        "braidflow.execution_id": after.execution_id,
        "braidflow.workflow_id": after.workflow_id,
        "braidflow.workflow_version": after.workflow_version,
        "braidflow.tenant": after.tenant,
    }
    spans: list[SpanEnd] = []
    for message in outgoing:
        if not isinstance(message, LifecycleEvent) or message.execution_id != after.execution_id:
            continue
        if message.node_id is None and message.type in _EXECUTION_ENDS:
            if before is not None and before.status == ExecutionStatus.PARKED:
                # A parked execution cancelled: its span ended when it parked.
                continue
            status = message.type.removeprefix("workflow.")
            spans.append(
                _execution_span(trace, common, after, redrives, status, message.at, message.error)
            )
        elif message.node_id is not None and message.attempt and message.type in _NODE_ENDS:
            run = after.nodes.get(message.node_id)
            started = run.started_at if run is not None and run.attempt == message.attempt else None
            spans.append(
                _node_span(
                    trace,
                    common,
                    message.node_id,
                    message.attempt,
                    message.at if started is None else started,
                    message.at,
                    message.type.removeprefix("node."),
                    message.error,
                    node_types,
                    redrives,
                )
            )
    if before is not None:
        spans += _cancelled(trace, common, before, after, node_types, redrives)
        earlier = redrive_times(before)
        if len(redrives) > len(earlier) and before.status == ExecutionStatus.RUNNING:
            # A redrive that found the execution running (another branch still going):
            # nothing ended its span, so the redrive does, and opens the next.
            spans.append(
                _execution_span(trace, common, after, earlier, "redriven", redrives[-1], None)
            )
    return spans


def redrive_times(state: ExecutionState) -> tuple[int, ...]:
    """When the execution was redriven, oldest first."""
    return tuple(c.at for c in state.control if c.action == "redrive")


def _execution_span(
    trace: ExecutionTrace,
    common: Mapping[str, str | int],
    after: ExecutionState,
    redrives: Sequence[int],
    status: str,
    end_ms: int,
    error: NodeError | None,
) -> SpanEnd:
    """The span an execution's end (or parking, or a redrive finding it running) closes, after
    `redrives`: its own until a redrive, then that of its latest redrive, from it on."""
    attributes: dict[str, str | int] = {**common, "braidflow.status": status}
    if not redrives:
        name, span_id, parent, start = (
            f"workflow {after.workflow_id}",
            trace.span_id,
            trace.parent_span_id,
            after.started_at,
        )
    else:
        attributes["braidflow.redrive"] = len(redrives)
        name, span_id, parent, start = (
            f"redrive {after.workflow_id}",
            trace.redrive_span_id(len(redrives)),
            trace.span_id,
            redrives[-1],
        )
    return SpanEnd(
        name, trace.trace_id, span_id, parent, trace.flags, start, end_ms, status, attributes, error
    )


def _cancelled(
    trace: ExecutionTrace,
    common: Mapping[str, str | int],
    before: ExecutionState,
    after: ExecutionState,
    node_types: Mapping[str, str] | None,
    redrives: Sequence[int],
) -> list[SpanEnd]:
    """Node runs in flight that this step cancelled. One waiting to retry has no span open:
    its attempt's span ended when the attempt failed."""
    spans = []
    for node_id, run in after.nodes.items():
        previous = before.nodes.get(node_id)
        if (
            run.status != NodeStatus.CANCELLED
            or previous is None
            or previous.status not in IN_FLIGHT
            or previous.attempt != run.attempt
            or run.attempt < 1
            or ids.node_timer(node_id, run.attempt, "retry") in before.timers
        ):
            continue
        start = run.started_at if run.started_at is not None else after.updated_at
        end = run.completed_at if run.completed_at is not None else after.updated_at
        spans.append(
            _node_span(
                trace,
                common,
                node_id,
                run.attempt,
                start,
                end,
                NodeStatus.CANCELLED,
                None,
                node_types,
                redrives,
            )
        )
    return spans


def _node_span(
    trace: ExecutionTrace,
    common: Mapping[str, str | int],
    node_id: str,
    attempt: int,
    start_ms: int,
    end_ms: int,
    status: str,
    error: NodeError | None,
    node_types: Mapping[str, str] | None,
    redrives: Sequence[int],
) -> SpanEnd:
    """A node run's span: a child of the execution's span, or of the span of the latest
    redrive before the run started."""
    attributes = {
        **common,
        "braidflow.node_id": node_id,
        "braidflow.attempt": attempt,
        "braidflow.status": status,
    }
    node_type = None if node_types is None else node_types.get(node_id)
    if node_type is not None:
        attributes["braidflow.node_type"] = node_type
    return SpanEnd(
        f"node {node_id}",
        trace.trace_id,
        trace.node_span_id(node_id, attempt),
        trace.segment_span_id(bisect.bisect_right(redrives, start_ms)),
        trace.flags,
        start_ms,
        end_ms,
        status,
        attributes,
        error,
    )
