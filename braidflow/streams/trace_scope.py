"""A task handler runs with its node run's span as OpenTelemetry's current context, so the
spans a handler makes, and the calls of libraries OpenTelemetry instruments, join the
execution's trace without the handler passing `context.traceparent` on by hand."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from braidflow.engine.trace_context import HEADER

_PROPAGATOR = TraceContextTextMapPropagator()
# The form the engine writes every task request's traceparent in. The propagator's `extract`
# (a regex search, then its checks and a TraceState) took about half a task run's overhead.
_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})").fullmatch


def remote_parent(traceparent: str) -> context.Context:
    """OpenTelemetry's context whose current span is the remote one `traceparent` names,
    as the W3C propagator's `extract` makes it (the current context when it names none)."""
    match = _VERSION_00(traceparent)
    if match is not None:
        trace_id, span_id, flags = (int(group, 16) for group in match.groups())
        if trace_id and span_id:
            span = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
            return trace.set_span_in_context(NonRecordingSpan(span))
    # Anything else (another version, surrounding spaces, an invalid id): the propagator's rules.
    return _PROPAGATOR.extract({HEADER: traceparent})


@contextlib.contextmanager
def node_run_context(traceparent: str | None) -> Iterator[None]:
    """Within the block, OpenTelemetry's current span is the remote one `traceparent` names.

    Each task runs in an asyncio task of its own (a sync handler in a thread that copies the
    context), so the context set here is that task's alone.
    """
    if traceparent is None:
        yield
        return
    token = context.attach(remote_parent(traceparent))
    try:
        yield
    finally:
        context.detach(token)
