"""A worker gives the heap a drained backlog freed back to the system (glibc's malloc_trim)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from braidflow.config import Settings
from braidflow.runtime import malloc_trim, wiring
from braidflow.runtime.malloc_trim import fix_thresholds, glibc_trim, trim_every

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


# A reader's thread frees one large fetch (16 MiB: mmapped), then 24 of 1 MiB that it holds
# at the top of its arena; what of those 24 MiB is given back once freed, then once trimmed.
# In a process of its own: glibc's thresholds are the process's, and they rise for good.
FETCHES = """
import ctypes, ctypes.util, importlib.util, json, sys, threading
from pathlib import Path

# The module alone: braidflow.runtime imports the whole worker.
spec = importlib.util.spec_from_file_location("malloc_trim", sys.argv[2])
malloc_trim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(malloc_trim)
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
MIB = 1 << 20

def resident_mib():
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024

held, free, freed = threading.Event(), threading.Event(), threading.Event()

def fetches():
    # Nothing else allocated in this thread between: the blocks end at its arena's top.
    large = libc.malloc(16 * MIB)
    ctypes.memset(large, 1, 16 * MIB)
    libc.free(large)
    blocks = [libc.malloc(MIB) for _ in range(24)]
    for block in blocks:
        ctypes.memset(block, 1, MIB)
    held.set()
    free.wait()
    for block in blocks:
        libc.free(block)
    freed.set()

fixed = malloc_trim.fix_thresholds() if sys.argv[1] == "fixed" else False
reader = threading.Thread(target=fetches)
reader.start()
held.wait()
before = resident_mib()
free.set()
freed.wait()
at_free = before - resident_mib()
malloc_trim.glibc_trim()()
print(json.dumps({"fixed": fixed, "at_free": at_free, "trimmed": before - resident_mib()}))
reader.join()
"""


def fetches_given_back(how: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """MiB of a reader's 24 MiB of fetches given back once freed and once trimmed, in a
    fresh process, with the thresholds fixed or not (`how`)."""
    ours = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    done = subprocess.run(
        [sys.executable, "-c", FETCHES, how, malloc_trim.__file__],
        env={**ours, **(env or {})},
        capture_output=True,
        check=True,
        text=True,
    )
    return json.loads(done.stdout)


def test_large_blocks_a_thread_frees_go_back_at_once_once_the_thresholds_are_fixed() -> None:
    if glibc_trim() is None:
        pytest.skip("not glibc")
    given = fetches_given_back("fixed")
    assert given["fixed"] is True
    assert given["at_free"] > 20


def test_without_fixed_thresholds_a_thread_arena_keeps_them_even_trimmed() -> None:
    """Pins glibc: a freed mmapped block raises both thresholds, so the blocks after it come
    from the thread's arena and stay at its top, which `malloc_trim` does not give back.
    Should glibc change either, `fix_thresholds` is no longer needed."""
    if glibc_trim() is None:
        pytest.skip("not glibc")
    # Once, in CI at load 13 (four pytest processes), a run saw the trim give all 24 MiB back:
    # one run of three showing the pin is enough, as a glibc that changed would show it in none.
    runs: list[dict[str, object]] = []
    for _ in range(3):
        runs.append(fetches_given_back("as glibc starts"))
        if runs[-1]["at_free"] < 4 and runs[-1]["trimmed"] < 4:
            return
    pytest.fail(f"every run gave the fetches back: {runs}")


def test_the_environment_sets_glibc_malloc_over_the_worker() -> None:
    if glibc_trim() is None:
        pytest.skip("not glibc")
    given = fetches_given_back("fixed", {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024)})
    assert given["fixed"] is False
    assert given["at_free"] < 4
    assert fix_thresholds({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1048576"}) is False
    assert fix_thresholds({"MALLOC_TRIM_THRESHOLD_": "1048576"}) is False


def test_a_worker_fixes_the_thresholds_before_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(wiring, "fix_thresholds", lambda: calls.append(1) or True)
    # Refused before it makes a Kafka client: the thresholds were fixed already.
    with pytest.raises(RuntimeError, match="--no-auth"):
        wiring.build_runtime(Settings(authentication=False, api_host="0.0.0.0"))
    assert calls == [1]
