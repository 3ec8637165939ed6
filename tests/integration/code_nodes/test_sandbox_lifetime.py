"""A sandbox lives no longer than its run: the wall clock kills every process in it, a run
cancelled (the worker stopping) kills it, and so does the worker's death, even by SIGKILL,
which leaves it no time to clean up."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from braidflow.connectors.code import CodeSandbox
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretScope, provider_for
from braidflow.tasks import NodeFailure
from braidflow.topology.kinds.code import limits_in_force

# Forks once, names both processes (their comm) for the host to find, and sleeps.
SLEEPER = (
    "import ctypes, os, time\n"
    "def main(input):\n"
    "    os.fork()\n"
    "    ctypes.CDLL(None).prctl(15, input.encode())\n"
    "    time.sleep(60)\n"
)


def request(name: str, wall_ms: int = 60_000) -> TaskRequest:
    limits = limits_in_force({"wall_ms": wall_ms})
    given = {"source": SLEEPER, "input": name, "limits": limits}
    return TaskRequest("ex", "wf", "code", "code", 1, "ex:code:1", 1, given, None)


def named(name: str) -> list[str]:
    """The pids of the processes whose comm is `name`."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                found.append(comm.parent.name)
        except OSError:
            pass
    return found


async def until_count(name: str, count: int, timeout_s: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while len(found := named(name)) != count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return found


async def test_the_wall_clock_kills_the_code_and_the_processes_it_forked() -> None:
    name = f"bf{uuid.uuid4().hex[:10]}"
    run = asyncio.create_task(
        CodeSandbox.on_this_worker().run(
            request(name, wall_ms=2_000), SecretScope(provider_for(None)), NodeLog(lambda: 0)
        )
    )
    assert len(await until_count(name, 2)) == 2
    with pytest.raises(NodeFailure) as failed:
        await run
    assert failed.value.type == "code.wall_limit"
    assert await until_count(name, 0) == []


async def test_a_cancelled_run_kills_its_sandbox() -> None:
    name = f"bf{uuid.uuid4().hex[:10]}"
    run = asyncio.create_task(
        CodeSandbox.on_this_worker().run(
            request(name), SecretScope(provider_for(None)), NodeLog(lambda: 0)
        )
    )
    assert len(await until_count(name, 2)) == 2
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    assert await until_count(name, 0) == []


WORKER = """
import asyncio, sys
import pytest

from braidflow.connectors.code import CodeSandbox
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretScope, provider_for
from braidflow.topology.kinds.code import limits_in_force

given = {"source": sys.argv[1], "input": sys.argv[2], "limits": limits_in_force({"wall_ms": 60000})}
request = TaskRequest("ex", "wf", "code", "code", 1, "k", 1, given, None)
asyncio.run(
    CodeSandbox.on_this_worker().run(request, SecretScope(provider_for(None)), NodeLog(lambda: 0))
)
"""


async def test_a_worker_killed_outright_takes_its_sandboxes_with_it() -> None:
    name = f"bf{uuid.uuid4().hex[:10]}"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, SLEEPER, name])
    try:
        assert len(await until_count(name, 2, timeout_s=15)) == 2
        worker.send_signal(signal.SIGKILL)
        worker.wait(5)
        assert await until_count(name, 0) == []
    finally:
        if worker.poll() is None:
            worker.kill()
