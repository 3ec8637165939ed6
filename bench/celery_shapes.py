"""The runtime bench's two shapes on Celery, for bench/peer_celery.py: a 3-way fan-out + join
of no-op tasks (a chord), many at once, and a 3-step chain of no-op tasks, one at a time.

Also the Celery app its worker loads (`celery --app celery_shapes worker`, bench/ on the
path). Celery's defaults throughout, as a user would start it: Redis as broker and result
backend, the prefork pool, tasks acknowledged before they run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from celery import Celery, chain, chord
from celery.result import AsyncResult
from runtime_bench import CHAIN_SAMPLES, _percentile, cpu_seconds

from braidflow.connectors.broker import dying_with_parent

HERE = Path(__file__).parent
REDIS_URL = "BENCH_REDIS_URL"
WORKER_PROCESSES = 2

app = Celery("braidflow-bench-peer")
app.conf.update(
    broker_url=os.environ.get(REDIS_URL),
    result_backend=os.environ.get(REDIS_URL),
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(*_: Any) -> None:
    """A task that does nothing; in a chain it is handed its parent's result."""


@app.task(name="bench.join")
def join(results: list[Any]) -> int:
    """The chord's body: runs once all three header tasks have stored their results."""
    return len(results)


def start_worker(redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    """A Celery worker with 2 prefork processes on `redis_url`; it dies with this process."""
    command = [
        sys.executable, "-m", "celery", "--app", "celery_shapes", "worker",
        "--pool", "prefork", "--concurrency", str(WORKER_PROCESSES), "--loglevel", "WARNING",
        "--hostname", f"bench-{uuid.uuid4().hex[:6]}@%h",
        # Cluster chatter at start; no bearing on tasks.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    env = {**os.environ, REDIS_URL: redis_url, "PYTHONPATH": str(HERE)}
    return subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        preexec_fn=dying_with_parent(),
    )  # fmt: skip


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Warm shutdown (nothing is running by then), killed if it takes too long."""
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def worker_cpu_seconds(pid: int) -> float:
    """CPU time of the worker and its pool processes (its children)."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone since the listing
            continue
        if int(fields[1]) == pid:
            total += cpu_seconds(int(stat.parent.name))
    return total


def fan_out(executions: int) -> list[AsyncResult]:
    """Send `executions` chords of three no-op tasks and a join; their bodies' results."""
    return [
        chord([noop.s(), noop.s(), noop.s()], join.s()).apply_async() for _ in range(executions)
    ]


def wait_ready(timeout_s: float = 60) -> None:
    """One task round trip: the worker consumes and the result backend answers."""
    noop.delay().get(timeout=timeout_s)


def measure(
    redis_url: str, worker: subprocess.Popen[bytes], redis_pid: int, executions: int
) -> dict[str, float]:
    """Fan-out executions/s and CPU per execution of worker and Redis; chain p50 and p99."""
    app.conf.update(broker_url=redis_url, result_backend=redis_url)
    wait_ready()
    # Warm up, as the runtime bench does: connections, pool processes, imports.
    for result in fan_out(20):
        result.get(timeout=60)

    cpu_before = worker_cpu_seconds(worker.pid), cpu_seconds(redis_pid)
    began = time.perf_counter()
    for result in fan_out(executions):
        result.get(timeout=300)
    elapsed = time.perf_counter() - began
    worker_cpu = worker_cpu_seconds(worker.pid) - cpu_before[0]
    redis_cpu = cpu_seconds(redis_pid) - cpu_before[1]

    latencies = []
    for _ in range(CHAIN_SAMPLES):
        sent = time.perf_counter()
        chain(noop.s(), noop.s(), noop.s()).apply_async().get(timeout=30)
        latencies.append(time.perf_counter() - sent)
    return {
        "executions_per_s": executions / elapsed,
        "worker_cpu_ms_per_execution": worker_cpu * 1000 / executions,
        "broker_cpu_ms_per_execution": redis_cpu * 1000 / executions,
        "chain_p50_ms": statistics.median(latencies) * 1000,
        "chain_p99_ms": _percentile(latencies, 99) * 1000,
    }
