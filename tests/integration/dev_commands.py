"""`braidflow` commands run as a user runs them, for the dev-mode tests: a subprocess with
its output in files, and the one-line failure it must end with."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
# The console script of this virtualenv: what `make run` starts.
BRAIDFLOW = Path(sys.executable).parent / "braidflow"
# A PATH without this virtualenv on it, as in a shell where it was never activated.
BARE_PATH = "/usr/bin:/bin"
READY = "Ctrl-C stops everything."


class Command:
    """One braidflow subprocess; its stdout and stderr go to files in `home`."""

    def __init__(self, args: Sequence[str], home: Path, env: dict[str, str] | None = None):
        home.mkdir(parents=True, exist_ok=True)
        self.stdout_path = home / "stdout"
        self.stderr_path = home / "stderr"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("BRAIDFLOW_")}
        # Dev mode writes its owner key under the config home: the test's, not the user's.
        clean.update(PYTHONUNBUFFERED="1", XDG_CONFIG_HOME=str(home), **(env or {}))
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                list(args), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=clean, cwd=home
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return (
            f"exit status {self.process.poll()}\n--- stdout\n{self.stdout}\n"
            f"--- stderr\n{self.stderr}"
        )

    def wait_exit(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {timeout_s}s\n{self.describe()}", pytrace=False)

    def wait_for_output(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.stdout:
            if self.process.poll() is not None:
                pytest.fail(f"exited before printing {text!r}\n{self.describe()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} after {timeout_s}s\n{self.describe()}", pytrace=False)
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def braidflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "braidflow.cli", *args]


def assert_one_line_failure(command: Command, *named: str) -> None:
    """Exited non-zero, no traceback, and the last line says why, naming each of `named`."""
    status = command.wait_exit(90)
    output = command.stdout + command.stderr
    assert status != 0, command.describe()
    assert "Traceback" not in output, command.describe()
    last = command.stderr.strip().splitlines()[-1] if command.stderr.strip() else ""
    assert last.startswith("Error: "), command.describe()
    for text in named:
        assert text in last, command.describe()
    # Said once: no other line repeats the cause.
    assert sum(named[0] in line for line in output.splitlines()) == 1, command.describe()


@contextmanager
def listening(port: int) -> Iterator[bool]:
    """Hold 127.0.0.1:`port` as another program would; whether this test got it (False:
    some other program holds it already, which takes it just as well)."""
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", port))
        except OSError:
            yield False
            return
        holder.listen()
        yield True
