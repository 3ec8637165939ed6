"""The sandbox as a worker started by an ordinary user runs it (the image's `braidflow` user):
bwrap makes a user namespace of its own mapping that user to nobody, where the process limit
counts only the sandbox's processes and no further user namespace can be made.

The suite runs as root under `make test`; this runs bwrap as `nobody` then, with a Python
`nobody` can reach (the system's), else as the user running the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest

from braidflow.connectors.code import (
    SANDBOX_USER,
    Interpreter,
    host_tops,
    rlimits,
    sandbox_command,
)
from braidflow.topology.kinds.code import limits_in_force

AS_ROOT = os.geteuid() == 0


def interpreter() -> Interpreter:
    if not AS_ROOT:
        return Interpreter.of_this_process()
    found = [p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)]
    assert found, "no system python3 for nobody to run (apt-get install python3)"
    return Interpreter(os.path.realpath(found[0]), "/usr")


async def answer(source: str, cpu_ms: int = 1000) -> tuple[int, dict[str, Any]]:
    """Runs `source` as a code node under bwrap started by an ordinary user; its status and answer."""
    limits = limits_in_force({"cpu_ms": cpu_ms})
    command = sandbox_command("bwrap", interpreter(), False, False, host_tops())
    request = {"source": source, "input": None, "rlimits": rlimits(limits), "cpu_ms": cpu_ms}
    user: dict[str, Any] = {}
    if AS_ROOT:
        uid, gid = SANDBOX_USER
        user = {"user": uid, "group": gid, "extra_groups": [], "cwd": "/"}
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **user,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(request).encode()), 20)
    assert process.returncode is not None
    return process.returncode, (json.loads(out) if out else {"stderr": err.decode()})


async def test_the_code_runs_as_nobody_in_a_user_namespace_of_its_own() -> None:
    status, answered = await answer("import os\ndef main(input):\n    return os.getuid()\n")
    assert (status, answered) == (0, {"output": SANDBOX_USER[0]})


async def test_no_further_user_namespace_can_be_made_inside() -> None:
    source = (
        "import ctypes\n"
        "def main(input):\n"
        "    return ctypes.CDLL(None, use_errno=True).unshare(0x10000000)\n"  # CLONE_NEWUSER
    )
    status, answered = await answer(source)
    assert (status, answered) == (0, {"output": -1})


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        ("import os\ndef main(input):\n    while True:\n        os.fork()\n", "code.process_limit"),
        ("def main(input):\n    return len(bytearray(4 * 1024**3))\n", "MemoryError"),
        ("def main(input):\n    return open('/etc/passwd').read()\n", "FileNotFoundError"),
    ],
)
async def test_the_escapes_fail_as_they_do_under_root(source: str, limit: str) -> None:
    status, answered = await answer(source)
    assert status == 0
    assert answered["error"]["type"] == limit, answered


async def test_a_loop_ends_by_the_cpu_timer() -> None:
    status, answered = await answer("def main(input):\n    while True:\n        pass\n", 300)
    assert (status, answered) == (128 + 27, {"stderr": ""})  # SIGPROF
