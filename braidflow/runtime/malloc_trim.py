"""Giving freed heap back to the system: now and then (glibc's `malloc_trim`), and at once for
large blocks (glibc's thresholds, fixed).

A backlog (timers firing, a reader catching up) fills the allocator with records and
batches that are freed once it drains, but glibc hands back only the free space at the top
of each arena: the rest stays resident, spread over up to 16 arenas on two cores (one per
thread that allocates: the loop, librdkafka's, RocksDB's). At 20,000 fired timers that was
20 - 40 MiB kept for nothing. `malloc_trim` returns every free page of every arena; it takes
a few milliseconds, in a thread of its own, and nothing when little is free.

It leaves alone the free top of each thread arena, though, which glibc gives back only when a
free makes it pass the trim threshold, and both thresholds rise by themselves: freeing a
block glibc had mmapped (128 KiB and up) lifts the mmap threshold to that block's size (up
to 32 MiB) and the trim threshold to twice it. Once a thread freed a large block (a Kafka
client's fetch response, likely: up to 1 MiB a partition, several MiB a response while a
reader catches up), the large blocks after it came from the arenas, and each arena kept
megabytes at its top: 15 s after 20,000 timers fired, 16 - 25 MiB of thread arenas were
resident (/proc/PID/smaps), 17 MiB of it two arenas' free tops (`malloc_info`). With both
thresholds fixed, a large block is mmapped and unmapped whole and an arena's free top goes
back as it is freed: 5 - 7 MiB of thread arenas then, and the worker some 16 MiB smaller.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
from collections.abc import Callable, Mapping

PERIOD_S = 10.0
"""How often a worker trims: soon after a backlog drains, and rare enough to cost nothing."""

MMAP_THRESHOLD = 128 * 1024
"""Blocks from this size up are mmapped, and unmapped when freed: glibc's starting value."""

TRIM_THRESHOLD = 128 * 1024
"""An arena's free top past this goes back to the system when a block is freed: glibc's
starting value."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _glibc_function(name: str) -> Callable[..., int] | None:
    """A function of the C library, if it is glibc's (musl has neither of ours)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    return getattr(ctypes.CDLL(library), name, None)


def fix_thresholds(environ: Mapping[str, str] = os.environ) -> bool:
    """Fix glibc's mmap and trim thresholds at their starting values, so they never rise;
    whether they were set (not on another C library, nor when the environment sets glibc's
    malloc itself)."""
    mallopt = _glibc_function("mallopt")
    if mallopt is None or _set_by_environment(environ):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def _set_by_environment(environ: Mapping[str, str]) -> bool:
    """Whether the environment sets either threshold, which glibc read at its start: the
    user's choice wins over the worker's."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    return any(
        f"MALLOC_{name.upper()}_" in environ or f"glibc.malloc.{name}=" in tunables
        for name in ("mmap_threshold", "trim_threshold")
    )


def glibc_trim() -> Callable[[], bool] | None:
    """glibc's `malloc_trim(0)`, returning whether it gave memory back; None on another C
    library (musl has no such call, and gives memory back itself)."""
    trim = _glibc_function("malloc_trim")
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
