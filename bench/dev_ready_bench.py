"""How long `braidflow dev` takes to be ready, as `make run` starts it: from the process's
start to `GET /api/v1/ready` answering 200 (embedded broker, worker, API, examples deployed),
then how long an event published at that moment takes to start its workflow (the
`ticket.opened` of the ticket-escalation example, to its execution in the workflow's list).
Beside the time, the CPU time dev mode's process had used when ready (Linux, from /proc):
on a shared machine it drifts far less than the time does.

Prints figures; never a pass/fail test. Run: `make bench-dev-ready` (or
`python bench/dev_ready_bench.py [--runs N] [--compare TREE]`).

`--compare TREE`: the runs alternate between TREE (another checkout's source tree, put first
on PYTHONPATH, run with this virtualenv) and this one, so both see the same machine; judge a
change by the ratio, with the load average printed beside each run.

Each tree's `braidflow` package is compiled to bytecode before the runs, as every start after
a user's first finds it: where `PYTHONDONTWRITEBYTECODE` is set (this development machine's
environment), every measured start would otherwise compile some 215 modules from source, 0.3 -
0.4 s of CPU that no user's second start pays.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from braidflow.client_cli import Api, ApiUnreachable
from braidflow.connectors.broker import free_port

ROOT = Path(__file__).parents[1]
OWNER_KEY = re.compile(r"owner API key: (\S+)")
DEADLINE_S = 120.0


def _poll(check: object, began: float, process: subprocess.Popen[bytes]) -> float:
    """Seconds from `began` until `check()` is true (the process must keep running)."""
    while time.monotonic() - began < DEADLINE_S:
        if process.poll() is not None:
            raise RuntimeError("braidflow dev exited; see its output")
        with contextlib.suppress(ApiUnreachable):
            if check():  # type: ignore[operator]
                return time.monotonic() - began
        time.sleep(0.01)
    raise RuntimeError(f"not done within {DEADLINE_S:.0f} s")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far; 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(tree: Path | None) -> tuple[float, float, float]:
    """Start `braidflow dev` (from `tree` when given), measure it, stop it: (ready after,
    CPU time used by then, an event published at ready started its workflow after)."""
    with tempfile.TemporaryDirectory(prefix="braidflow-dev-ready-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRAIDFLOW_")}
        # Dev mode keeps its owner key under the config home: this run's, not the user's.
        env.update(PYTHONUNBUFFERED="1", XDG_CONFIG_HOME=str(home))
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        port = free_port()
        command = [
            sys.executable, "-m", "braidflow.cli", "dev", "--examples", str(ROOT / "examples"),
            "--api-port", str(port), "--demo-port", str(free_port()),
        ]  # fmt: skip
        output = home / "output"
        with open(output, "wb") as out:
            began = time.monotonic()
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home
            )
        try:
            api = Api.at(f"127.0.0.1:{port}")
            ready_s = _poll(lambda: api.call("GET", "/ready").status == 200, began, process)
            cpu_s = cpu_seconds(process.pid)
            found = OWNER_KEY.search(output.read_text())
            api = Api.at(api.base, found.group(1) if found else None)
            published = time.monotonic()
            event = {
                "specversion": "1.0", "id": uuid.uuid4().hex, "source": "/bench",
                "type": "ticket.opened", "data": {"ticket_id": "B-1", "priority": "high"},
            }  # fmt: skip
            reply = api.call_json("POST", "/events", event)
            if reply.status != 202:
                raise RuntimeError(f"the event was refused: {reply}")
            listing = "/workflows/ticket-escalation/executions"
            started_s = _poll(
                lambda: bool(api.call("GET", listing).body["executions"]), published, process
            )
        except BaseException:
            print(output.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=60)
    return ready_s, cpu_s, started_s


def compile_sources(tree: Path) -> None:
    """Write the bytecode of `tree`'s braidflow package (see the module's docstring)."""
    if not compileall.compile_dir(tree / "braidflow", quiet=1):
        raise RuntimeError(f"{tree / 'braidflow'} does not compile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument(
        "--compare", type=Path, metavar="TREE",
        help="alternate with the braidflow source tree at TREE, run first",
    )  # fmt: skip
    args = parser.parse_args()
    trees: list[tuple[str, Path | None]] = [("this", None)]
    if args.compare is not None:
        trees.insert(0, (str(args.compare), args.compare.resolve()))
    for _, tree in trees:
        compile_sources(tree or ROOT)
    ready: dict[str, list[float]] = {name: [] for name, _ in trees}
    cpu: dict[str, list[float]] = {name: [] for name, _ in trees}
    for round_ in range(args.runs):
        for name, tree in trees:
            ready_s, cpu_s, started_s = one_run(tree)
            ready[name].append(ready_s)
            cpu[name].append(cpu_s)
            load = os.getloadavg()[0]
            print(
                f"  run {round_ + 1} {name:>12}  ready after {ready_s:5.2f} s (CPU {cpu_s:4.2f} s)"
                f"  an event at ready started its workflow after {started_s:5.2f} s"
                f"  load {load:4.1f}",
                flush=True,
            )
    print("braidflow dev, process start to GET /api/v1/ready 200, median of the runs:")
    for name in ready:
        got = ready[name]
        print(
            f"  {name:>12}  {statistics.median(got):5.2f} s  ({min(got):.2f} - {max(got):.2f}),"
            f" CPU {statistics.median(cpu[name]):4.2f} s"
        )
    if args.compare is not None:
        (before, after), (cpu_before, cpu_after) = (
            [statistics.median(got) for got in figures.values()] for figures in (ready, cpu)
        )
        print(
            f"  this / {args.compare}: ready {after / before:4.2f} x,"
            f" CPU {cpu_after / cpu_before:4.2f} x"
        )


if __name__ == "__main__":
    main()
