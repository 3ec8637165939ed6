"""The OTLP receiver the trace tests export spans to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from background_loop import BackgroundLoop
from otlp_receiver import Collector

from braidflow.connectors.broker import free_port


@pytest.fixture
def collector(background_loop: BackgroundLoop) -> Iterator[tuple[Collector, str]]:
    collector = Collector()
    port = free_port()
    runner = background_loop.serve(collector.app(), "127.0.0.1", port)
    try:
        yield collector, f"http://127.0.0.1:{port}"
    finally:
        background_loop.run(runner.cleanup())
