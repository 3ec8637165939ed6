"""A worker gives the heap a drained backlog freed back to the system (glibc's malloc_trim)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from pathlib import Path

import pytest

from braidflow.runtime import malloc_trim
from braidflow.runtime.malloc_trim import glibc_trim, trim_every

CHUNK = 4096
CHUNKS = 10_000  # 40 MB: a drained backlog's records, below malloc's mmap threshold


def resident_kib() -> int:
    status = Path("/proc/self/status").read_text()
    (line,) = (line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1])


def test_a_heap_freed_under_a_live_block_goes_back_only_when_trimmed() -> None:
    trim = glibc_trim()
    if trim is None:
        pytest.skip("not glibc")
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(CHUNK) for _ in range(CHUNKS)]
    for block in blocks:
        ctypes.memset(block, 1, CHUNK)
    # The last block stays: free space below it is not at the top, so free() keeps it all.
    kept = libc.malloc(CHUNK)
    for block in blocks:
        libc.free(block)
    freed = resident_kib()
    trim()
    trimmed = resident_kib()
    libc.free(kept)
    assert freed - trimmed > CHUNK * CHUNKS // 1024 // 2


async def test_a_worker_trims_every_period_until_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(malloc_trim, "glibc_trim", lambda: lambda: calls.append(1) or True)
    task = asyncio.create_task(trim_every(0.01))
    async with asyncio.timeout(10):
        while len(calls) < 3:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) >= 3
