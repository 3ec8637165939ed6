"""Waiting in tests for what a worker does in the background."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(condition: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    """The first truthy value `condition` gives within `timeout_s`; AssertionError naming
    `what` when none does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
