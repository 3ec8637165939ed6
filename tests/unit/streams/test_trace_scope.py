"""A handler runs inside its node run's span: the remote parent its task request's
`traceparent` names, exactly as OpenTelemetry's W3C propagator reads it, whatever the header
holds (the shortcut for the engine's own form must not drift from the library)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from braidflow.streams.trace_scope import node_run_context, remote_parent

GIVEN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def propagated(traceparent: str) -> SpanContext:
    extracted = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    return trace.get_current_span(extracted).get_span_context()


def ours(traceparent: str) -> SpanContext:
    return trace.get_current_span(remote_parent(traceparent)).get_span_context()


@pytest.mark.parametrize(
    "traceparent",
    [
        GIVEN,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-garbage",
        "",
    ],
)
def test_a_traceparent_names_the_parent_the_propagator_would(traceparent: str) -> None:
    assert ours(traceparent) == propagated(traceparent)


_HEX = "0123456789abcdefABCDEF"


@given(
    st.sampled_from(["00", "01", "ff", "0", "0g"]),
    st.text(_HEX, min_size=31, max_size=33),
    st.text(_HEX, min_size=15, max_size=17),
    st.text(_HEX + "-", min_size=1, max_size=3),
    st.sampled_from(["", "-", "-x", " "]),
)
def test_any_traceparent_names_the_parent_the_propagator_would(
    version: str, trace_id: str, span_id: str, flags: str, tail: str
) -> None:
    traceparent = f"{version}-{trace_id}-{span_id}-{flags}{tail}"
    assert ours(traceparent) == propagated(traceparent)


def test_inside_a_node_run_the_current_span_is_its_remote_parent() -> None:
    before = trace.get_current_span().get_span_context()
    with node_run_context(GIVEN):
        span = trace.get_current_span().get_span_context()
        assert (format(span.trace_id, "032x"), format(span.span_id, "016x")) == (
            GIVEN[3:35],
            GIVEN[36:52],
        )
        assert span.is_remote and span.trace_flags.sampled
    assert trace.get_current_span().get_span_context() == before
