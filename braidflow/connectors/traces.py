"""OpenTelemetry spans of executions and node runs, exported by OTLP (docs/traces.md).

Off unless the standard variables ask for it: `OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_TRACES_EXPORTER` (`otlp`, `console`);
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off. Everything else the
SDK reads itself: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`,
`OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_*` (headers, timeout, compression).

A span is emitted whole, once its end is known, by the worker that applies the step ending
it (`engine.trace_context.ended_spans`), with the start time the execution state recorded.
Its ids are the derived ones, so a span started on one worker and ended on another, or
before and after a restart, is still one span with the right parent. The SDK makes ids
with its `IdGenerator`: `DerivedIds` hands it the derived ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from braidflow.connectors.trace_settings import exporter_names, tracing_wanted
from braidflow.engine import ExecutionState, StepResult
from braidflow.engine.trace_context import SpanEnd, ended_spans

log = logging.getLogger(__name__)

_NS_PER_MS = 1_000_000


def exporters_from_environment(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters `OTEL_TRACES_EXPORTER` names (default: otlp); ValueError for one
    braidflow does not ship."""
    exporters: list[SpanExporter] = []
    for name in exporter_names(environ) or ["otlp"]:
        if name == "otlp":
            exporters.append(_otlp_exporter(environ))
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            raise ValueError(f"OTEL_TRACES_EXPORTER: {name!r} is not one of otlp, console, none")
    return exporters


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise ValueError(
                "OTEL_EXPORTER_OTLP_PROTOCOL: grpc needs the package"
                " opentelemetry-exporter-otlp-proto-grpc; or use http/protobuf"
            ) from None
        return GrpcSpanExporter()  # type: ignore[no-any-return]
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not one of http/protobuf, grpc")


class DerivedIds(IdGenerator):
    """The SDK's id generator, handing out the ids of the span being emitted."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        return self.trace_id


class StepSpans:
    """Turns the steps the orchestrator applies into spans (its `on_applied` hook)."""

    def __init__(
        self, processors: Iterable[SpanProcessor], resource: Resource | None = None
    ) -> None:
        self._ids = DerivedIds()
        if resource is None:
            resource = Resource.create()
            if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
                resource = resource.merge(Resource({SERVICE_NAME: "braidflow"}))
        self.provider = TracerProvider(resource=resource, id_generator=self._ids)
        for processor in processors:
            self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("braidflow")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> StepSpans | None:
        """Spans exported as the `OTEL_*` variables say; None when they ask for none."""
        if not tracing_wanted(environ):
            return None
        return cls([BatchSpanProcessor(e) for e in exporters_from_environment(environ)])

    def observe(
        self, before: ExecutionState | None, result: StepResult, node_types: Mapping[str, str]
    ) -> None:
        """Emit the spans the step from `before` to `result.state` ended."""
        if result.state is None:
            return
        try:
            for span in ended_spans(before, result.state, result.outgoing, node_types):
                self.emit(span)
        except Exception:
            # Traces are a view: a span that cannot be made must never stop a partition.
            log.exception("emitting the spans of a step of %s failed", result.state.execution_id)

    def emit(self, span: SpanEnd) -> None:
        """Hand one ended span to the SDK (sampler, processors, exporters)."""
        self._ids.trace_id = int(span.trace_id, 16)
        self._ids.span_id = int(span.span_id, 16)
        context = Context()
        if span.parent_span_id is not None:
            parent = SpanContext(
                self._ids.trace_id,
                int(span.parent_span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(int(span.flags, 16) & 0xFF),
            )
            context = set_span_in_context(NonRecordingSpan(parent), context)
        started = self._tracer.start_span(
            span.name,
            context,
            SpanKind.INTERNAL,
            span.attributes,
            start_time=span.start_ms * _NS_PER_MS,
        )
        if span.error is not None:
            started.set_attribute("error.type", span.error.type)
            started.set_status(Status(StatusCode.ERROR, f"{span.error.type}: {span.error.message}"))
        started.end(end_time=max(span.end_ms, span.start_ms) * _NS_PER_MS)

    def shutdown(self) -> None:
        """Export what is pending and stop."""
        self.provider.shutdown()
