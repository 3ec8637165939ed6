"""The task runs of one executor, by request: a request this worker runs once, however it came.

A request reaches the executor two ways: handed over by this worker's own orchestrator as it
sends it (`Executor.run_here`), and read back from the tasks topic. Whichever comes second
finds the run here, under way or done, and does not start another; a record read back counts
as done once that run's result is delivered. Keyed by the record's value: the same bytes are
the same request (its idempotency key is in them), and a record is found without decoding it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

RUNS_KEPT = 10_000
"""Runs remembered. A record read back after its run was forgotten runs again: a duplicate
result, which the engine ignores; with the record read back within milliseconds, rare."""


class TaskRuns:
    """Runs by the request's record value, the newest `capacity` of them."""

    def __init__(self, capacity: int = RUNS_KEPT) -> None:
        self._runs: OrderedDict[bytes, asyncio.Task[None]] = OrderedDict()
        self._capacity = capacity

    def get(self, value: bytes | None) -> asyncio.Task[None] | None:
        """The run of the request `value`, if this executor started one."""
        return None if value is None else self._runs.get(value)

    def add(self, value: bytes | None, run: asyncio.Task[None]) -> None:
        """Remember `run` as the run of the request `value`."""
        if value is None:
            return
        self._runs[value] = run
        if len(self._runs) > self._capacity:
            self._runs.popitem(last=False)
