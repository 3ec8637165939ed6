"""Giving freed heap back to the system, now and then (glibc's `malloc_trim`).

A backlog (timers firing, a reader catching up) fills the allocator with records and
batches that are freed once it drains, but glibc hands back only the free space at the top
of each arena: the rest stays resident, spread over up to 16 arenas on two cores (one per
thread that allocates: the loop, librdkafka's, RocksDB's). At 20,000 fired timers that was
20 - 40 MiB kept for nothing. `malloc_trim` returns every free page of every arena; it takes
a few milliseconds, in a thread of its own, and nothing when little is free.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

PERIOD_S = 10.0
"""How often a worker trims: soon after a backlog drains, and rare enough to cost nothing."""


def glibc_trim() -> Callable[[], bool] | None:
    """glibc's `malloc_trim(0)`, returning whether it gave memory back; None on another C
    library (musl has no such call, and gives memory back itself)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: bool(trim(0))


async def trim_every(period_s: float = PERIOD_S) -> None:
    """Trim the heap every `period_s` until cancelled; nothing where there is no glibc."""
    trim = glibc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(period_s)
        # ctypes lets go of the GIL for the call: the loop runs on meanwhile.
        await asyncio.to_thread(trim)
