"""The worker's log level reaches the client libraries: no debug records built for nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import faust
import pytest

from braidflow.runtime.worker import QuietWorker


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("level", ["warning", "error"])
def test_the_root_logger_keeps_the_level_asked_for(root_logger: logging.Logger, level: str) -> None:
    app = faust.App("logging-test", broker="kafka://127.0.0.1:1")
    QuietWorker(app, loglevel=level, quiet=True, redirect_stdouts=False)._setup_logging()
    assert root_logger.level == logging.getLevelName(level.upper())
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("faust").isEnabledFor(logging.DEBUG)
