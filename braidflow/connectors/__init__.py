"""The outside world: HTTP nodes, the REST API, the embedded broker, metrics."""
