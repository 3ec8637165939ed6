"""The task runs of one executor, by request: a request this worker runs once, however it came.

A request reaches the executor two ways: handed over by this worker's own orchestrator as it
sends it (`Executor.run_here`), and read back from the tasks topic. Whichever comes second
finds the run here, under way or done, and does not start another; a record read back counts
as done once that run's result is delivered. Keyed by a digest of the record's value: the same
bytes are the same request (its idempotency key is in them), a record is found without decoding
it, and what is remembered stays 16 bytes a run however large the request's input.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict

RUNS_KEPT = 10_000
"""Runs remembered. A record read back after its run was forgotten runs again: a duplicate
result, which the engine ignores; with the record read back within milliseconds, rare."""


def _digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


class TaskRuns:
    """Runs by the request's record value, the newest `capacity` of them."""

    def __init__(self, capacity: int = RUNS_KEPT) -> None:
        self._runs: OrderedDict[bytes, asyncio.Task[None]] = OrderedDict()
        self._capacity = capacity

    def get(self, value: bytes | None) -> asyncio.Task[None] | None:
        """The run of the request `value`, if this executor started one."""
        return None if value is None else self._runs.get(_digest(value))

    def add(self, value: bytes | None, run: asyncio.Task[None]) -> None:
        """Remember `run` as the run of the request `value`."""
        if value is None:
            return
        self._runs[_digest(value)] = run
        if len(self._runs) > self._capacity:
            self._runs.popitem(last=False)
