"""Runs `code` nodes: the node's Python in a separate process, sandboxed by bubblewrap.

The sandbox (`bwrap`, Debian's `bubblewrap`) gets a read-only view of only what Python
needs (`/usr`, the worker's interpreter and its standard library, the loader's cache and
the runner; nothing else of `/etc`, no `/home`, `/root`, `/proc` or the worker's own files),
a private `/tmp` of `TMP_BYTES`, a `/dev` of
the harmless devices, no network unless the node allows it (a network namespace of its
own, with nothing in it), and PID, IPC and UTS namespaces of its own; it dies with the
worker. Inside, before the node's source runs, `code_runner` takes rlimits: CPU time,
address space, processes, file size, open files, no core dumps. The wall clock is kept
here and kills the sandbox's process group. JSON goes in on stdin and comes out on stdout,
at most `ANSWER_BYTES` of it; what the code prints goes to the node run's log.

Started by root (a container's worker), bwrap runs without a user namespace and the runner
drops to `SANDBOX_USER` itself before the source runs, with every other capability dropped
by bwrap: in a user namespace root's processes stay root to the kernel, which exempts them
from RLIMIT_NPROC, so a fork bomb would not stop. Started by anyone else, bwrap maps the
worker's user to `SANDBOX_USER` in a user namespace of its own, and no further one may be
made inside.

A worker without bwrap, or where it cannot make its namespaces, fails every code node with
`code.sandbox_unavailable`: the source never runs unsandboxed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretScope
from braidflow.tasks import NodeFailure
from braidflow.topology.kinds.code import limits_problem

log = logging.getLogger(__name__)

_MB = 1024 * 1024
SANDBOX_USER = (65534, 65534)
"""uid and gid the source runs as: `nobody` and `nogroup` on Debian."""
PROCESSES = 16
"""RLIMIT_NPROC: processes and threads the code's user may have at once (the runner is one)."""
FILE_BYTES = 16 * _MB
"""RLIMIT_FSIZE: the largest file the code may write."""
OPEN_FILES = 64
"""RLIMIT_NOFILE: file descriptors the code may hold."""
TMP_BYTES = 64 * _MB
"""Size of the private /tmp (a tmpfs: memory of the worker's, outside RLIMIT_AS)."""
ANSWER_BYTES = _MB
"""The most the code may answer on stdout; the record limit may refuse less."""
LOG_BYTES = 64 * 1024
"""The most of what the code prints that is read for the node run's log."""
# Directories made on the way to a bind of the interpreter's: bwrap would make them 0700, so
# the sandbox's user could not reach the interpreter under a /root/.pyenv.
_PARENT_MODE = "0755"
# The files a network needs, bound when a node allows one: names, hosts, CA certificates.
_NETWORK_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
)
# What the runner reports the kernel refused, by the limit's error type.
_LIMITS_BROKEN = {
    "code.process_limit": f"ran more than its {PROCESSES} processes and threads at once",
    "code.file_limit": f"wrote a file past its {FILE_BYTES // _MB} MB",
    "code.tmp_limit": f"filled its {TMP_BYTES // _MB} MB of /tmp",
    "code.open_files_limit": f"held more than its {OPEN_FILES} open files",
}
# bwrap reports the sandboxed process's death by a signal as 128 + the signal's number.
_CPU_SIGNALS = frozenset({signal.SIGPROF, signal.SIGXCPU, signal.SIGKILL})
_RUNNER = Path(__file__).with_name("code_runner.py")
_RUNNER_IN_SANDBOX = Path("/run/braidflow/code_runner.py")
# Everything in the sandbox is dead once its process is: what is left in the pipes is at hand.
_DRAIN_S = 1.0


@dataclass(frozen=True, slots=True)
class Interpreter:
    """The Python the sandbox runs: its executable and the directory it is installed in."""

    executable: str
    prefix: str

    @classmethod
    def of_this_process(cls) -> Interpreter:
        """The worker's own interpreter (a virtualenv's base), so the code sees its version."""
        return cls(os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix))


def rlimits(limits: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """The rlimits the runner takes for a node's `limits` (soft, hard), by `resource` name.

    RLIMIT_CPU counts whole seconds: the node's CPU time rounded up at the soft limit
    (SIGXCPU), a second more at the hard one (SIGKILL). The runner's timer stops the code at
    the node's own milliseconds, unless the code disarms it.
    """
    cpu_s = math.ceil(limits["cpu_ms"] / 1000)
    memory = limits["memory_mb"] * _MB
    return {
        "RLIMIT_CPU": (cpu_s, cpu_s + 1),
        "RLIMIT_AS": (memory, memory),
        "RLIMIT_NPROC": (PROCESSES, PROCESSES),
        "RLIMIT_FSIZE": (FILE_BYTES, FILE_BYTES),
        "RLIMIT_NOFILE": (OPEN_FILES, OPEN_FILES),
        "RLIMIT_CORE": (0, 0),
    }


def host_tops() -> dict[str, str | None]:
    """This host's top-level directories the loader and libc may live in: each one's symlink
    target (merged /usr: /lib -> usr/lib), or None for a directory of its own."""
    tops: dict[str, str | None] = {}
    for top in ("/bin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            tops[top] = os.readlink(top)
        elif os.path.isdir(top):
            tops[top] = None
    return tops


def sandbox_command(
    bwrap: str,
    interpreter: Interpreter,
    network: bool,
    as_root: bool,
    tops: Mapping[str, str | None],
) -> list[str]:
    """The command that runs the runner under bwrap; `tops`: as `host_tops` gives them."""
    view = ["--ro-bind", "/usr", "/usr"]
    for top, target in tops.items():
        view += ["--symlink", target, top] if target is not None else ["--ro-bind", top, top]
    # /etc holds what the loader and a network need, nothing else (no passwd, no secrets).
    view += ["--perms", _PARENT_MODE, "--dir", "/etc"]
    view += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    prefix = interpreter.prefix
    if prefix != "/usr" and not prefix.startswith("/usr/"):
        for parent in reversed(Path(prefix).parents[:-1]):
            view += ["--perms", _PARENT_MODE, "--dir", str(parent)]
        view += ["--ro-bind", prefix, prefix]
    view += ["--perms", _PARENT_MODE, "--dir", str(_RUNNER_IN_SANDBOX.parent)]
    view += ["--ro-bind", str(_RUNNER), str(_RUNNER_IN_SANDBOX)]
    if network:
        for path in _NETWORK_FILES:
            view += ["--ro-bind-try", path, path]
    if as_root:
        # No user namespace (see the module's docstring); the runner needs only to drop to
        # SANDBOX_USER, which these two capabilities allow and its setuid then clears.
        who = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        uid, gid = SANDBOX_USER
        who = ["--unshare-user", "--uid", str(uid), "--gid", str(gid), "--disable-userns"]
    namespaces = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        namespaces.append("--unshare-net")
    return [
        bwrap,
        *view,
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(TMP_BYTES),
        "--tmpfs",
        "/tmp",
        *who,
        *namespaces,
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--chdir",
        "/tmp",
        "--",
        interpreter.executable,
        "-I",
        "-S",
        "-B",
        str(_RUNNER_IN_SANDBOX),
    ]


class CodeSandbox:
    """Runs code nodes (`run`, an executor's work run for the kind `code`).

    `bwrap`: the bubblewrap executable (None: there is none, and every code node fails
    `code.sandbox_unavailable`); `interpreter`: the Python it runs (default: the worker's).
    """

    def __init__(self, bwrap: str | None, interpreter: Interpreter | None = None) -> None:
        self._bwrap = bwrap
        self._interpreter = interpreter or Interpreter.of_this_process()
        self._as_root = os.geteuid() == 0
        self._tops = host_tops()

    @classmethod
    def on_this_worker(cls) -> CodeSandbox:
        """The sandbox with the `bwrap` found on PATH, if any (a warning at start if none)."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            log.warning(
                "bubblewrap (bwrap) is not on PATH: code nodes will fail here, never run"
                " unsandboxed (Debian: apt-get install bubblewrap)"
            )
        return cls(bwrap)

    async def run(self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog) -> Any:
        """The output of the node's `main`; NodeFailure naming the limit it broke, the
        exception it raised, or why the sandbox could not run it."""
        given = request.input
        if not isinstance(given, Mapping) or not isinstance(given.get("source"), str):
            raise NodeFailure("InvalidRequest", "code node input is not {source, input, limits}")
        limits = given.get("limits")
        problem = limits_problem(limits)
        if problem is not None:
            raise NodeFailure("InvalidRequest", problem)
        assert isinstance(limits, Mapping)
        if self._bwrap is None:
            raise NodeFailure(
                "code.sandbox_unavailable",
                "bubblewrap (bwrap) is not installed on this worker, and code nodes never run"
                " unsandboxed: install it (Debian: apt-get install bubblewrap)",
            )
        wall_ms = limits["wall_ms"]
        if request.timeout_ms is not None:
            wall_ms = min(wall_ms, request.timeout_ms)
        runner_request = {
            "source": given["source"],
            "input": given.get("input"),
            "rlimits": rlimits(limits),
            "cpu_ms": limits["cpu_ms"],
            "user": list(SANDBOX_USER) if self._as_root else None,
        }
        command = sandbox_command(
            self._bwrap, self._interpreter, limits["network"], self._as_root, self._tops
        )
        run = await _Run.start(command, json.dumps(runner_request).encode())
        await run.finish(wall_ms / 1000)
        for line in run.log.decode(errors="replace").splitlines():
            node_log.add("info", line)
        return _outcome(run, limits, wall_ms)


class _Run:
    """One sandboxed process: what it answered and printed, and how it ended."""

    def __init__(self, process: asyncio.subprocess.Process, request: bytes) -> None:
        self.process = process
        self._request = request
        self.answer = b""
        self.log = b""
        self.answer_too_large = False
        self.out_of_time = False

    @classmethod
    async def start(cls, command: Sequence[str], request: bytes) -> _Run:
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Its own process group, which the wall clock kills whole.
                start_new_session=True,
            )
        except OSError as exc:
            raise NodeFailure(
                "code.sandbox_unavailable", f"bubblewrap could not be started: {exc}"
            ) from None
        return cls(process, request)

    async def finish(self, wall_s: float) -> None:
        """Wait for the process to end, killing it at `wall_s` or once its answer is too large."""
        process = self.process
        assert process.stdin and process.stdout and process.stderr
        try:
            async with asyncio.timeout(wall_s):
                await asyncio.gather(
                    self._send(process.stdin),
                    self._read_answer(process.stdout),
                    self._read_log(process.stderr),
                )
                await process.wait()
        except TimeoutError:
            self.out_of_time = True
        finally:
            if process.returncode is None:
                self._kill()
                await process.wait()
            await self._drain()

    async def _drain(self) -> None:
        """Read what is left in the pipes of a process stopped early, so that their transport
        closes now rather than when it is collected, perhaps after its loop has closed."""
        process = self.process
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_S):
                for stream in (process.stdout, process.stderr):
                    while stream is not None and await stream.read(64 * 1024):
                        pass

    async def _send(self, stdin: asyncio.StreamWriter) -> None:
        # A process that ends before it reads its request (bwrap refusing) closes the pipe.
        with contextlib.suppress(ConnectionError):
            stdin.write(self._request)
            await stdin.drain()
            stdin.close()
            await stdin.wait_closed()

    async def _read_answer(self, stdout: asyncio.StreamReader) -> None:
        chunks: list[bytes] = []
        size = 0
        while chunk := await stdout.read(64 * 1024):
            size += len(chunk)
            if size > ANSWER_BYTES:
                self.answer_too_large = True
                self._kill()
                return
            chunks.append(chunk)
        self.answer = b"".join(chunks)

    async def _read_log(self, stderr: asyncio.StreamReader) -> None:
        kept = bytearray()
        # Read to the end even past what is kept: a full pipe would stop the code.
        while chunk := await stderr.read(64 * 1024):
            kept += chunk[: LOG_BYTES - len(kept)]
        self.log = bytes(kept)

    def _kill(self) -> None:
        # bwrap's --die-with-parent and its PID namespace take every process inside with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _outcome(run: _Run, limits: Mapping[str, Any], wall_ms: int) -> Any:
    """The node's output, or the NodeFailure saying why there is none."""
    if run.out_of_time:
        raise NodeFailure("code.wall_limit", f"ran past its {wall_ms} ms of wall-clock time")
    if run.answer_too_large:
        raise NodeFailure(
            "code.output_limit", f"answered more than the {ANSWER_BYTES:,} bytes it may"
        )
    status = run.process.returncode
    if run.answer:
        return _answered(run.answer, limits)
    assert status is not None
    if status > 128 and status - 128 in _CPU_SIGNALS:
        raise NodeFailure("code.cpu_limit", f"used its {limits['cpu_ms']} ms of CPU")
    printed = run.log.decode(errors="replace").strip()
    if printed.startswith("bwrap:"):
        raise NodeFailure("code.sandbox_unavailable", printed.splitlines()[0])
    how = f"status {status}"
    if status > 128 and status - 128 in signal.valid_signals():
        how = f"signal {signal.Signals(status - 128).name}"
    last = printed.splitlines()[-1] if printed else "nothing printed"
    raise NodeFailure("code.crashed", f"the code's process ended ({how}) without an answer: {last}")


def _answered(text: bytes, limits: Mapping[str, Any]) -> Any:
    try:
        answer = json.loads(text)
    except ValueError as exc:
        raise NodeFailure("code.invalid_output", f"the answer is not JSON: {exc}") from None
    if isinstance(answer, dict) and "output" in answer:
        return answer["output"]
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        raise NodeFailure("code.invalid_output", "the answer is neither an output nor an error")
    type_, message = str(error.get("type")), str(error.get("message"))
    if type_ == "MemoryError":
        raise NodeFailure("code.memory_limit", f"used its {limits['memory_mb']} MB of memory")
    broken = _LIMITS_BROKEN.get(type_)
    if broken is not None:
        raise NodeFailure(type_, f"{broken}: {message}")
    raise NodeFailure(type_, message)
