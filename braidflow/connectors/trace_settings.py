"""Whether the `OTEL_*` variables ask for spans (docs/traces.md), read without the
OpenTelemetry SDK: a worker imports the SDK (`connectors.traces`) only when they do."""

from __future__ import annotations

from collections.abc import Mapping

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the `OTEL_*` variables ask for spans to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = exporter_names(environ)
    if exporters == ["none"]:
        return False
    return bool(exporters) or any(environ.get(name, "").strip() for name in _ENDPOINTS)


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters `OTEL_TRACES_EXPORTER` names, lower case (none: [])."""
    raw = environ.get("OTEL_TRACES_EXPORTER", "")
    return [name.strip().lower() for name in raw.split(",") if name.strip()]
