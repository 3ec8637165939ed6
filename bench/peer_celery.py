"""braidflow beside Celery, in one run: the runtime bench's two shapes on Celery (2 prefork
worker processes, Redis as broker and result backend), then braidflow's runtime bench, both
printed side by side with issue 18's targets as ratios measured in the same run.

- a 3-way fan-out + join of no-op tasks, N executions at once: executions/s (Celery: a chord);
- a 3-step chain of no-op tasks, one execution at a time: p50 and p99 from start to end
  (braidflow: two tasks and the end node; Celery: three tasks);
- braidflow's bare 2-hop Kafka round trip (the floor) and worker CPU per transition.

Redis is Debian's `redis-server`, started on a free port on 127.0.0.1 without persistence
and stopped when the bench ends, however it ends. Prints figures; never a pass/fail test.
Run: `make bench-peer` (installs celery, redis and redis-server), or
`python bench/peer_celery.py [--executions N] [--rounds K] [--broker HOST:PORT]`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime_bench import (
    FAN_TRANSITIONS,
    _percentile,
    add_kafka_options,
    bench_kafka,
    positive,
    run_worker,
)

from braidflow.connectors.broker import EmbeddedBroker, dying_with_parent, free_port
from braidflow.kafka_connection import KafkaConnection

DURABILITY = (
    "Celery's results live only in Redis (here without persistence), and it acknowledges a task\n"
    "before running it: a worker killed mid-task loses the task, and that chord's join never runs.\n"
    "braidflow keeps every transition in Kafka and each join's arrivals in a Kafka-backed table:\n"
    "a killed worker's executions finish on another (tests/integration/recovery/)."
)


@dataclass(frozen=True, slots=True)
class Round:
    """One comparison: braidflow's figures (runtime bench's, plus the floor), Celery's, and
    the load average (1, 5, 15 min) when it ended."""

    braidflow: dict[str, float]
    celery: dict[str, float]
    load: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Target:
    """One of issue 18's targets: what was measured, against which bound, which way."""

    name: str
    value: float
    bound: float
    at_least: bool
    unit: str

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.at_least else self.value <= self.bound


def targets(round_: Round) -> list[Target]:
    """Issue 18's ratios and bound, from one round's figures."""
    ours, celery = round_.braidflow, round_.celery
    return [
        Target(
            "fan-out executions/s, braidflow / Celery",
            ours["executions_per_s"] / celery["executions_per_s"], 2, True, "x",
        ),
        Target(
            "chain p50, braidflow / Celery",
            ours["chain_p50_ms"] / celery["chain_p50_ms"], 2, False, "x",
        ),
        Target(
            "chain p50, braidflow / bare 2-hop round trip",
            ours["chain_p50_ms"] / ours["floor_p50_ms"], 6, False, "x",
        ),
        Target("worker CPU per transition", ours["worker_cpu_ms"], 0.25, False, "ms"),
    ]  # fmt: skip


def _bound(target: Target) -> str:
    return f"{'>=' if target.at_least else '<='} {target.bound:g} {target.unit}"


def _row(label: str, braidflow: str, celery: str = "") -> str:
    return f"  {label:<44}{braidflow:>12}{celery:>12}".rstrip()


def format_round(number: int, total: int, round_: Round, executions: int) -> str:
    """One round's figures side by side, then the targets, each met or not met."""
    ours, celery = round_.braidflow, round_.celery
    load = " ".join(f"{x:.2f}" for x in round_.load)
    lines = [
        f"round {number} of {total}, load average {load} (1, 5, 15 min) at its end",
        _row("", "braidflow", "Celery"),
        f"3-way fan-out + join of no-op tasks, {executions} executions at once",
        _row(
            "executions/s", f"{ours['executions_per_s']:.0f}", f"{celery['executions_per_s']:.0f}"
        ),
        _row(
            "worker CPU per execution",
            f"{ours['worker_cpu_ms'] * FAN_TRANSITIONS:.2f} ms",
            f"{celery['worker_cpu_ms_per_execution']:.2f} ms",
        ),
    ]
    if "broker_cpu_ms" in ours:
        lines.append(
            _row(
                "broker CPU per execution (Tansu, Redis)",
                f"{ours['broker_cpu_ms'] * FAN_TRANSITIONS:.2f} ms",
                f"{celery['broker_cpu_ms_per_execution']:.2f} ms",
            )
        )
    lines += [
        "3-step chain of no-op tasks, one at a time (braidflow: 2 tasks and the end node)",
        _row("p50", f"{ours['chain_p50_ms']:.1f} ms", f"{celery['chain_p50_ms']:.1f} ms"),
        _row("p99", f"{ours['chain_p99_ms']:.1f} ms", f"{celery['chain_p99_ms']:.1f} ms"),
        _row("bare Kafka round trip, 2 hops, p50", f"{ours['floor_p50_ms']:.1f} ms"),
        _row("worker CPU per transition", f"{ours['worker_cpu_ms']:.2f} ms"),
        "targets (issue 18)",
    ]
    for target in targets(round_):
        lines.append(
            f"  {target.name:<48}{target.value:8.2f} {target.unit:<3}{_bound(target):>12}"
            f"   {'met' if target.met else 'NOT MET'}"
        )
    return "\n".join(lines)


def format_summary(rounds: Sequence[Round]) -> str:
    """Each target over all rounds: its range and in how many rounds it was met."""
    by_name: dict[str, list[Target]] = {}
    for round_ in rounds:
        for target in targets(round_):
            by_name.setdefault(target.name, []).append(target)
    lines = [f"{len(rounds)} rounds in a row"]
    for name, got in by_name.items():
        values = [t.value for t in got]
        met = sum(t.met for t in got)
        lines.append(
            f"  {name:<48}{f'{min(values):.2f} - {max(values):.2f}':>15} {got[0].unit:<3}"
            f"{_bound(got[0]):>12}   met in {met} of {len(got)}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """--executions N (the fan-out's), --rounds K, and the runtime bench's Kafka options."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    add_kafka_options(parser)
    parser.add_argument(
        "--executions", type=positive, default=1000, metavar="N",
        help="fan-out executions started at once, on each side (default 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", type=positive, default=1, metavar="K",
        help="repeat the whole comparison K times, printing each round (default 1)",
    )  # fmt: skip
    return parser.parse_args(argv)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(timeout_s: float = 10) -> Iterator[tuple[str, int]]:
    """Debian's redis-server on a free port of 127.0.0.1, no persistence: (URL, pid).

    Stopped on the way out; killed with this process if it dies without a chance to stop it.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: `make bench-peer` installs it as root")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="braidflow-peer-redis-") as tmp:
        log = Path(tmp) / "redis.log"
        command = [
            binary, "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "no",
            "--save", "", "--appendonly", "no", "--dir", tmp, "--logfile", str(log),
        ]  # fmt: skip
        process = subprocess.Popen(command, preexec_fn=dying_with_parent())
        try:
            deadline = time.monotonic() + timeout_s
            while not _answers_ping(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0", process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_round(
    kafka: KafkaConnection,
    embedded: EmbeddedBroker | None,
    redis: tuple[str, int],
    executions: int,
) -> Round:
    """Celery's two shapes on a fresh Celery worker, then braidflow's on a fresh worker."""
    # Imported here: celery is a bench-only dependency (bench/requirements-peer.txt).
    import celery_shapes

    url, redis_pid = redis
    with tempfile.TemporaryDirectory(prefix="braidflow-peer-celery-") as tmp:
        log = Path(tmp) / "celery.log"
        worker = celery_shapes.start_worker(url, log)
        try:
            celery = celery_shapes.measure(url, worker, redis_pid, executions)
        except BaseException:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            celery_shapes.stop_worker(worker)
    ready_s, floor, figures = run_worker(kafka, embedded, executions)
    braidflow = {
        **figures,
        "ready_s": ready_s,
        "floor_p50_ms": statistics.median(floor) * 1000,
        "floor_p99_ms": _percentile(floor, 99) * 1000,
    }
    return Round(braidflow, celery, os.getloadavg())


def _exit_on_signal(signum: int, _frame: object) -> None:
    # SystemExit unwinds through every `finally`: Redis and the workers are stopped.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start", flush=True)
    kafka, embedded = bench_kafka(args)
    rounds: list[Round] = []
    try:
        with redis_server() as redis:
            for number in range(1, args.rounds + 1):
                rounds.append(run_round(kafka, embedded, redis, args.executions))
                print(format_round(number, args.rounds, rounds[-1], args.executions), flush=True)
    finally:
        if embedded is not None:
            embedded.stop()
    if len(rounds) > 1:
        print(format_summary(rounds))
    print(DURABILITY)


if __name__ == "__main__":
    main()
