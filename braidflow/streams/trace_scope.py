"""A task handler runs with its node run's span as OpenTelemetry's current context, so the
spans a handler makes, and the calls of libraries OpenTelemetry instruments, join the
execution's trace without the handler passing `context.traceparent` on by hand."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from braidflow.engine.trace_context import HEADER

_PROPAGATOR = TraceContextTextMapPropagator()


@contextlib.contextmanager
def node_run_context(traceparent: str | None) -> Iterator[None]:
    """Within the block, OpenTelemetry's current span is the remote one `traceparent` names.

    Each task runs in an asyncio task of its own (a sync handler in a thread that copies the
    context), so the context set here is that task's alone.
    """
    if traceparent is None:
        yield
        return
    token = context.attach(_PROPAGATOR.extract({HEADER: traceparent}))
    try:
        yield
    finally:
        context.detach(token)
