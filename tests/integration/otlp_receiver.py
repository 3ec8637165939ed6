"""An OTLP/HTTP trace receiver on 127.0.0.1 for the trace tests: the spans workers export (the
SDK's own exporter, as OTEL_* configures it), and the traceparents a called service is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    attributes: dict[str, Any]
    worker: str


class Collector:
    """What the OTLP receiver and the called service saw."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.traceparents: list[str | None] = []

    def app(self) -> web.Application:
        async def traces(request: web.Request) -> web.Response:
            export = ExportTraceServiceRequest.FromString(await request.read())
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            ReceivedSpan(
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex() or None,
                                span.name,
                                {a.key: _value(a.value) for a in span.attributes},
                                resource.get("service.instance.id", "?"),
                            )
                        )
            body = ExportTraceServiceResponse().SerializeToString()
            return web.Response(body=body, content_type="application/x-protobuf")

        async def service(request: web.Request) -> web.Response:
            self.traceparents.append(request.headers.get("traceparent"))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        app.router.add_get("/service", service)
        return app

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None
