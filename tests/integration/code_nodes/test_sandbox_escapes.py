"""Code that tries to leave its sandbox, against the real bubblewrap: every attempt fails the
node, naming the limit where one was broken; ordinary code works.

The sandbox runs here as it runs on a worker (`CodeSandbox.on_this_worker`): no bwrap on
this machine fails these tests, with `code.sandbox_unavailable`; they are never skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from braidflow.connectors.code import CodeSandbox, Interpreter
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretScope, provider_for
from braidflow.tasks import NodeFailure
from braidflow.topology.kinds.code import limits_in_force


class Listener:
    """A TCP server on 127.0.0.1 the test runs, counting the connections it accepts."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.write(b"hello from the host\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    listening = Listener()
    server = await asyncio.start_server(listening._accept, "127.0.0.1", 0)
    listening.port = server.sockets[0].getsockname()[1]
    async with server:
        yield listening


def sandbox() -> CodeSandbox:
    return CodeSandbox.on_this_worker()


def no_secrets() -> SecretScope:
    return SecretScope(provider_for(None))


def new_log() -> NodeLog:
    return NodeLog(lambda: 0)


async def run(
    source: str, input_: Any = None, timeout_ms: int | None = None, **limits: Any
) -> tuple[Any, NodeLog]:
    """The node's output and its log, running `source` as a code node with `limits`."""
    request = TaskRequest(
        "ex",
        "wf",
        "code",
        "code",
        1,
        "ex:code:1",
        1,
        {"source": source, "input": input_, "limits": limits_in_force(limits)},
        None,
        timeout_ms,
    )
    node_log = new_log()
    return await sandbox().run(request, no_secrets(), node_log), node_log


async def failure(source: str, input_: Any = None, **limits: Any) -> NodeFailure:
    with pytest.raises(NodeFailure) as failed:
        await run(source, input_, **limits)
    return failed.value


async def test_ordinary_code_runs_and_what_it_prints_is_its_log() -> None:
    source = (
        "import json, statistics\n"
        "def main(input):\n"
        "    print('averaging', len(input['xs']), 'values')\n"
        "    open('/tmp/scratch', 'w').write(json.dumps(input))\n"
        "    return {'mean': statistics.mean(input['xs']), 'kept': open('/tmp/scratch').read()}\n"
    )
    output, node_log = await run(source, {"xs": [1, 2, 3, 6]})
    assert output == {"mean": 3, "kept": '{"xs": [1, 2, 3, 6]}'}
    assert [(line.level, line.message) for line in node_log.close()] == [
        ("info", "averaging 4 values")
    ]


async def test_an_exception_fails_the_node_with_its_type_message_and_line() -> None:
    failed = await failure(
        "def main(input):\n    total = 0\n    raise ValueError(f'bad {input}')\n", 7
    )
    assert (failed.type, failed.message) == ("ValueError", "bad 7 (line 3 of the source)")


async def test_a_socket_to_a_server_on_the_host_s_loopback_is_refused(listener: Listener) -> None:
    source = (
        "import socket\n"
        "def main(input):\n"
        "    with socket.create_connection(('127.0.0.1', input), timeout=2) as s:\n"
        "        return s.recv(100).decode()\n"
    )
    failed = await failure(source, listener.port)
    assert failed.type == "ConnectionRefusedError", failed.message
    assert listener.accepted == 0
    # The server is there: with the network allowed, the same code reaches it.
    output, _ = await run(source, listener.port, network=True)
    assert output == "hello from the host\n"
    assert listener.accepted == 1


async def test_no_name_resolves_without_a_network() -> None:
    source = "import socket\ndef main(input):\n    return socket.gethostbyname('example.com')\n"
    failed = await failure(source)
    assert failed.type == "gaierror", failed.message


async def test_etc_passwd_and_the_worker_s_files_are_not_there() -> None:
    for path in (
        "/etc/passwd",
        "/etc/shadow",
        str(Path.cwd() / "pyproject.toml"),
        "/proc/1/environ",
    ):
        failed = await failure("def main(input):\n    return open(input).read()\n", path)
        assert failed.type == "FileNotFoundError", (path, failed.message)


async def test_nothing_outside_tmp_can_be_written() -> None:
    source = "def main(input):\n    open(input, 'w').write('owned')\n    return 'wrote'\n"
    for path in ("/usr/owned", "/owned", "/etc/owned", "/dev/owned"):
        failed = await failure(source, path)
        assert failed.type in {"OSError", "PermissionError"}, (path, failed)
        assert not os.path.exists(path)
    assert (await run(source, "/tmp/fine"))[0] == "wrote"


async def test_a_fork_bomb_stops_at_the_process_limit() -> None:
    source = "import os\ndef main(input):\n    while True:\n        os.fork()\n"
    failed = await failure(source)
    assert failed.type == "code.process_limit"
    assert failed.message.startswith("ran more than its 16 processes and threads at once: ")


async def test_allocating_4_gb_fails_at_the_memory_limit() -> None:
    failed = await failure("def main(input):\n    return len(bytearray(4 * 1024**3))\n")
    assert (failed.type, failed.message) == ("code.memory_limit", "used its 256 MB of memory")


async def test_a_loop_forever_fails_at_the_cpu_limit_before_the_wall_clock() -> None:
    failed = await failure("def main(input):\n    while True:\n        pass\n", cpu_ms=300)
    assert (failed.type, failed.message) == ("code.cpu_limit", "used its 300 ms of CPU")


async def test_a_loop_that_disarms_the_cpu_timer_still_dies_by_the_kernel_s_limit() -> None:
    source = (
        "import signal\n"
        "def main(input):\n"
        "    signal.setitimer(signal.ITIMER_PROF, 0)\n"
        "    signal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
        "    while True:\n"
        "        pass\n"
    )
    # The kernel kills it at its hard limit, 2 s of CPU: on a loaded machine more than the
    # default 10 s of wall clock, which must not end it first.
    failed = await failure(source, cpu_ms=500, wall_ms=120_000)
    assert (failed.type, failed.message) == ("code.cpu_limit", "used its 500 ms of CPU")


async def test_a_sleeper_is_stopped_at_the_wall_clock() -> None:
    started = time.monotonic()
    with pytest.raises(NodeFailure) as failed:
        await run("import time\ndef main(input):\n    time.sleep(60)\n", wall_ms=700)
    assert (failed.value.type, failed.value.message) == (
        "code.wall_limit",
        "ran past its 700 ms of wall-clock time",
    )
    # Stopped at the wall clock, not at the end of its sleep.
    assert time.monotonic() - started < 10


async def test_the_node_s_timeout_bounds_the_wall_clock_when_it_is_shorter() -> None:
    request_source = "import time\ndef main(input):\n    time.sleep(30)\n"
    with pytest.raises(NodeFailure) as failed:
        await run(request_source, timeout_ms=400)
    assert failed.value.message == "ran past its 400 ms of wall-clock time"


async def test_the_worker_s_processes_cannot_be_seen_or_signalled() -> None:
    source = (
        "import os, signal\n"
        "def main(input):\n"
        "    os.kill(input, signal.SIGTERM)\n"
        "    return 'signalled'\n"
    )
    failed = await failure(source, os.getpid())
    assert failed.type == "ProcessLookupError", failed.message


async def test_it_runs_as_nobody_with_an_empty_environment() -> None:
    source = (
        "import os\ndef main(input):\n    return [os.getuid(), os.getgid(), dict(os.environ)]\n"
    )
    output, _ = await run(source)
    assert output == [
        65534,
        65534,
        {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PWD": "/tmp"},
    ]


async def test_an_answer_too_large_fails_at_the_output_limit() -> None:
    failed = await failure("def main(input):\n    return 'x' * 2_000_000\n")
    assert failed.type == "code.output_limit"


async def test_a_worker_without_bwrap_never_runs_the_code() -> None:
    request = TaskRequest(
        "ex",
        "wf",
        "code",
        "code",
        1,
        "k",
        1,
        {
            "source": "def main(input):\n    return 1\n",
            "input": None,
            "limits": limits_in_force(None),
        },
        None,
    )
    with pytest.raises(NodeFailure) as failed:
        await CodeSandbox(None).run(request, no_secrets(), new_log())
    assert failed.value.type == "code.sandbox_unavailable"
    assert "never run unsandboxed" in failed.value.message


async def test_a_sandbox_bwrap_cannot_make_fails_the_node_naming_why() -> None:
    source = "def main(input):\n    return 1\n"
    given = {"source": source, "input": None, "limits": limits_in_force(None)}
    request = TaskRequest("ex", "wf", "code", "code", 1, "k", 1, given, None)
    missing = Interpreter("/nowhere/bin/python3", "/nowhere")
    sandbox = CodeSandbox(shutil.which("bwrap"), missing)
    with pytest.raises(NodeFailure) as failed:
        await sandbox.run(request, no_secrets(), new_log())
    assert failed.value.type == "code.sandbox_unavailable"
    assert failed.value.message.startswith("bwrap: "), failed.value.message
    assert "/nowhere" in failed.value.message


async def test_limits_a_request_carries_past_their_bounds_are_refused_before_anything_runs() -> (
    None
):
    limits = {**limits_in_force(None), "memory_mb": 1_000_000}
    request = TaskRequest(
        "ex",
        "wf",
        "code",
        "code",
        1,
        "k",
        1,
        {"source": "def main(input):\n    return 1\n", "input": None, "limits": limits},
        None,
    )
    with pytest.raises(NodeFailure) as failed:
        await sandbox().run(request, no_secrets(), new_log())
    assert failed.value.type == "InvalidRequest"
    assert "limits.memory_mb must be an integer from 64 to 2048" in failed.value.message
