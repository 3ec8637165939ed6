"""What a `code` node's sandbox runs: the node's source, its `main(input)`, the answer as JSON.

Standard library only, and no import of braidflow: it runs as `python -I -S -B <this file>`
inside the sandbox (connectors/code.py), where braidflow is not (this one file is bound in). It reads one JSON object
on stdin, `{source, input, rlimits, cpu_ms, user}`; compiles the source; drops to `user`
(uid, gid) when the sandbox started it as root; sets the rlimits and a CPU timer; then
runs the source and its `main`. What the code prints goes to stderr (the node run's log);
stdout carries one JSON object: `{"output": ...}` or `{"error": {type, message}}`.

A limit the kernel enforces ends the process by a signal (SIGPROF for the CPU timer,
SIGXCPU or SIGKILL for RLIMIT_CPU), which the executor reads from the exit status. The
others show as what Python raises: MemoryError, and an OSError whose errno names the limit.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import sys
from types import TracebackType
from typing import Any, TextIO

SOURCE_NAME = "<source>"


def _line(traceback: TracebackType | None) -> int | None:
    """The line of the source the exception came through last."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == SOURCE_NAME:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _error(type_: str, message: str, line: int | None = None) -> str:
    where = f" (line {line} of the source)" if line is not None else ""
    return json.dumps({"error": {"type": type_, "message": f"{message}{where}"}})


# The errors by which the kernel refuses what an rlimit or the /tmp size forbids.
_LIMITS_BY_ERRNO = {
    errno.EAGAIN: "code.process_limit",
    errno.EFBIG: "code.file_limit",
    errno.ENOSPC: "code.tmp_limit",
    errno.EMFILE: "code.open_files_limit",
}


def _limit_broken(exc: BaseException) -> str | None:
    """The limit `exc` says the code broke, or None. A fork or a thread refused by
    RLIMIT_NPROC is an EAGAIN; so is a non-blocking socket's, but without a network (the
    default) there is none."""
    if isinstance(exc, RuntimeError) and str(exc) == "can't start new thread":
        return "code.process_limit"
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno == errno.EAGAIN and not isinstance(exc, BlockingIOError):
            return None
        return _LIMITS_BY_ERRNO.get(exc.errno)
    return None


def _confine(request: dict[str, Any]) -> None:
    user = request.get("user")
    if user is not None:
        uid, gid = user
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    for name, (soft, hard) in request["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    # RLIMIT_CPU counts whole seconds; the timer holds the node to its milliseconds.
    signal.setitimer(signal.ITIMER_PROF, request["cpu_ms"] / 1000)


def _answer(request: dict[str, Any]) -> str:
    """The answer's JSON text."""
    try:
        code = compile(request["source"], SOURCE_NAME, "exec")
    except (SyntaxError, ValueError) as exc:
        return _error("code.invalid_source", str(exc))
    _confine(request)
    namespace: dict[str, Any] = {"__name__": "__code__"}
    try:
        exec(code, namespace)
        main = namespace.get("main")
        if not callable(main):
            return _error("code.invalid_source", "the source defines no `main(input)`")
        output = main(request["input"])
    except BaseException as exc:  # the code's failure, whatever it is, is the node's answer
        type_ = _limit_broken(exc) or type(exc).__name__
        return _error(type_, str(exc), _line(exc.__traceback__))
    try:
        return f'{{"output": {json.dumps(output, allow_nan=False)}}}'
    except MemoryError:
        return _error("MemoryError", "the answer did not fit in memory")
    except (TypeError, ValueError, RecursionError) as exc:
        return _error("code.invalid_output", f"main returned something not JSON: {exc}")


def run(stdin: TextIO) -> None:
    """Answer the request on `stdin` on the process's stdout (its fd 1 as it started)."""
    request = json.loads(stdin.read())
    runner = os.getpid()
    answer_to = os.fdopen(os.dup(1), "w", encoding="utf-8")
    # What the code prints (print, sys.stdout, fd 1) goes to stderr: the node run's log.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    answer = _answer(request)
    if os.getpid() != runner:
        # A process the code forked came back out of `main`: only the runner answers.
        os._exit(0)
    answer_to.write(answer)
    answer_to.flush()
    # Answered: threads the code left running are not waited for, nor its atexit hooks.
    os._exit(0)


if __name__ == "__main__":
    run(sys.stdin)
