"""Scale-out on one broker: the runtime bench's fan-out/fan-in shape run by 1, 2 and 4 worker
processes of one install (one prefix, one consumer group), on the embedded broker.

For each count it prints executions/s, the transitions each worker applied (its /metrics
`braidflow_transitions_total{outcome="applied"}`), each worker's and the broker's CPU per
transition (`/proc`), how much of a core each used, and what an idle worker costs, so the
figures say what a second worker adds on this machine and why (docs/performance.md#scale-out).

Prints figures; never a pass/fail test. Run: `make bench-scale` (or
`python bench/scale_bench.py [--workers 1,2,4] [--partitions 4] [--executions N]`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from runtime_bench import (
    FAN,
    FAN_RECORDS,
    Completions,
    add_kafka_options,
    bench_kafka,
    cpu_seconds,
    positive,
    start_worker,
    wait_ready,
)

from braidflow.client_cli import Api
from braidflow.connectors.broker import EmbeddedBroker, free_port
from braidflow.engine import StartExecution
from braidflow.kafka_connection import KafkaConnection
from braidflow.schemas import encode_transition

APPLIED = re.compile(r'^braidflow_transitions_total\{[^}]*outcome="applied"[^}]*\} (\S+)$', re.M)
TASKS_RUN = re.compile(r"^braidflow_tasks_run_total\{[^}]*\} (\S+)$", re.M)
HANDED_OVER = re.compile(r"^braidflow_tasks_handed_over_total (\S+)$", re.M)
WARM_UP_BATCH = 40
SETTLE_TIMEOUT_S = 120.0


def metric_counts(metrics: str) -> tuple[int, int, int]:
    """From a worker's /metrics text: transitions applied, tasks run, tasks handed over."""
    applied, run, handed_over = (
        round(sum(float(n) for n in pattern.findall(metrics)))
        for pattern in (APPLIED, TASKS_RUN, HANDED_OVER)
    )
    return applied, run, handed_over


@dataclass
class BenchWorker:
    """One worker process of the run, with its API and log."""

    process: subprocess.Popen[bytes]
    api: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def counts(self) -> tuple[int, int, int]:
        """From its /metrics: transitions its engine applied, tasks its executor ran, and of
        those the ones handed over by its own orchestrator (the rest came through the topic)."""
        reply = Api.at(self.api).call("GET", "/metrics")
        assert reply.status == 200, reply
        return metric_counts(str(reply.body))

    def applied(self) -> int:
        """Transitions this worker's engine applied so far."""
        return self.counts()[0]

    def main_thread_cpu_s(self) -> float:
        """CPU time of the worker's main thread: the event loop every agent shares."""
        fields = (
            Path(f"/proc/{self.pid}/task/{self.pid}/stat").read_text().rpartition(")")[2].split()
        )
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, every core (`/proc/stat`)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


@dataclass
class Sample:
    """What every counter read at one moment."""

    at: float
    counts: list[tuple[int, int, int]]
    cpu: list[float]
    main_cpu: list[float]
    broker_cpu: float
    machine: tuple[float, float]


def sample(workers: list[BenchWorker], broker_pid: int | None) -> Sample:
    return Sample(
        time.perf_counter(),
        [w.counts() for w in workers],
        [cpu_seconds(w.pid) for w in workers],
        [w.main_thread_cpu_s() for w in workers],
        cpu_seconds(broker_pid),
        machine_cpu_s(),
    )


async def start_fan_out(producer: AIOKafkaProducer, prefix: str) -> str:
    execution_id = uuid.uuid4().hex
    transition = StartExecution(
        f"{execution_id}/start", execution_id, int(time.time() * 1000), "bench-fan", 1, {}
    )
    await producer.send(
        f"{prefix}.transitions", encode_transition(transition), key=execution_id.encode()
    )
    return execution_id


async def run_fan_outs(
    producer: AIOKafkaProducer, completions: Completions, prefix: str, count: int
) -> set[str]:
    ids = {await start_fan_out(producer, prefix) for _ in range(count)}
    await producer.flush()
    await completions.wait_for(ids, 300)
    return ids


async def settle(
    workers: list[BenchWorker],
    producer: AIOKafkaProducer,
    completions: Completions,
    prefix: str,
    partitions: int,
) -> int:
    """Warm-up batches until the group has settled: the same workers applied transitions in
    two batches in a row, as many as there are partitions to share. Returns the batches run."""
    useful = min(len(workers), partitions)
    previous: set[int] = set()
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    batches = 0
    while time.monotonic() < deadline:
        before = [w.applied() for w in workers]
        await run_fan_outs(producer, completions, prefix, WARM_UP_BATCH)
        batches += 1
        busy = {i for i, w in enumerate(workers) if w.applied() > before[i]}
        if busy == previous and len(busy) == useful:
            return batches
        previous = busy
    raise RuntimeError(f"the group did not settle in {SETTLE_TIMEOUT_S:.0f} s")


@dataclass
class Figures:
    """One worker count's figures."""

    workers: int
    settled_s: float
    elapsed_s: float
    executions: int
    idle_s: float
    idle: Sample
    before: Sample
    after: Sample


async def measure(
    kafka: KafkaConnection,
    prefix: str,
    workers: list[BenchWorker],
    broker_pid: int | None,
    partitions: int,
    executions: int,
    idle_s: float,
) -> Figures:
    reply = Api.at(workers[0].api).call("POST", "/workflows", FAN.encode(), "application/yaml")
    assert reply.status in (200, 201), reply
    for worker in workers:  # every worker reads the deployment from the catalog topic
        while Api.at(worker.api).call("GET", "/workflows/bench-fan").status != 200:
            await asyncio.sleep(0.05)
    producer = AIOKafkaProducer(**kafka.aiokafka(), linger_ms=1)
    await producer.start()
    completions = Completions(kafka, f"{prefix}.lifecycle")
    await completions.start()
    try:
        began = time.perf_counter()
        await settle(workers, producer, completions, prefix, partitions)
        settled_s = time.perf_counter() - began
        idle = sample(workers, broker_pid)
        await asyncio.sleep(idle_s)
        before = sample(workers, broker_pid)
        ids = await run_fan_outs(producer, completions, prefix, executions)
        elapsed = max(completions.done[i] for i in ids) - before.at
        # Applied counts lag the lifecycle event a moment: read them once more after a pause.
        await asyncio.sleep(0.5)
        after = sample(workers, broker_pid)
    finally:
        await completions.stop()
        await producer.stop()
    return Figures(len(workers), settled_s, elapsed, executions, idle_s, idle, before, after)


def run_workers(
    kafka: KafkaConnection,
    embedded: EmbeddedBroker | None,
    count: int,
    args: argparse.Namespace,
) -> Figures:
    """Start `count` workers of one new prefix, measure them, stop them."""
    with tempfile.TemporaryDirectory(prefix="braidflow-scale-") as tmp:
        prefix = f"scale{uuid.uuid4().hex[:6]}"
        workers = []
        for n in range(count):
            data_dir = Path(tmp) / f"worker{n}"
            data_dir.mkdir()
            port = free_port()
            process = start_worker(kafka, prefix, data_dir, port, partitions=args.partitions)
            workers.append(
                BenchWorker(process, f"http://127.0.0.1:{port}", data_dir / "worker.log")
            )
        try:
            for worker in workers:
                wait_ready(worker.api, worker.process, timeout_s=120)
            return asyncio.run(
                measure(
                    kafka, prefix, workers, embedded.pid if embedded else None,
                    args.partitions, args.executions, args.idle,
                )
            )  # fmt: skip
        except BaseException:
            for worker in workers:
                print(f"--- {worker.log}\n{worker.log.read_text()[-2000:]}", file=sys.stderr)
            raise
        finally:
            for worker in workers:
                worker.process.terminate()
            for worker in workers:
                worker.process.wait(timeout=30)


def format_figures(figures: Figures, partitions: int, broker_measured: bool) -> str:
    """The figures of one worker count, as printed."""
    before, after = figures.before, figures.after
    elapsed = figures.elapsed_s
    applied = [a[0] - b[0] for a, b in zip(after.counts, before.counts, strict=True)]
    tasks = [a[1] - b[1] for a, b in zip(after.counts, before.counts, strict=True)]
    handed = [a[2] - b[2] for a, b in zip(after.counts, before.counts, strict=True)]
    total = sum(applied)
    expected = figures.executions * FAN_RECORDS
    worker_cpu = [a - b for a, b in zip(after.cpu, before.cpu, strict=True)]
    main_cpu = [a - b for a, b in zip(after.main_cpu, before.main_cpu, strict=True)]
    idle_cpu = [b - i for b, i in zip(before.cpu, figures.idle.cpu, strict=True)]
    broker = after.broker_cpu - before.broker_cpu
    busy = (after.machine[0] - before.machine[0]) / (after.at - before.at)
    ours = (sum(worker_cpu) + broker) / elapsed
    lines = [
        f"{figures.workers} worker(s), {partitions} partitions, {figures.executions} fan-outs at once",
        f"  group settled after                 {figures.settled_s:8.1f} s"
        "   (every worker ready to the same workers applying two warm-up batches in a row)",
        f"  executions/s                        {figures.executions / elapsed:8.0f}",
        f"  transitions/s                       {total / elapsed:8.0f}",
        f"  transitions applied, all workers    {total:8d}   (expected {expected})",
        f"  CPU per transition, all workers     {sum(worker_cpu) * 1000 / total:8.2f} ms"
        f"   (main threads {sum(main_cpu) * 1000 / total:.2f} ms)",
    ]
    if broker_measured:
        lines.append(
            f"  CPU per transition, broker          {broker * 1000 / total:8.2f} ms"
            f"   ({broker / elapsed:.2f} of a core)"
        )
    lines += [
        f"  machine cores busy (everyone's)     {busy:8.2f}   of {os.cpu_count()};"
        f" this bench's workers and broker {ours:.2f}",
        # What the shape costs whatever share of the machine this run got.
        f"  executions per CPU second, workers and broker {figures.executions / elapsed / ours:6.0f}",
    ]
    for n in range(figures.workers):
        share = applied[n] / total
        own = f"{worker_cpu[n] * 1000 / applied[n]:6.2f} ms" if applied[n] else "     -   "
        lines.append(
            f"  worker {n + 1}: applied {applied[n]:6d} ({share:4.0%}), CPU per own transition"
            f" {own}, per transition of all {worker_cpu[n] * 1000 / total:4.2f} ms,"
            f" {worker_cpu[n] / elapsed:.2f} of a core (main thread"
            f" {main_cpu[n] / elapsed:.2f}), idle {idle_cpu[n] * 1000 / figures.idle_s:4.0f} ms/s,"
            f" tasks run {tasks[n]} ({handed[n]} handed over)"
        )
    return "\n".join(lines)


def _worker_counts(text: str) -> list[int]:
    try:
        return [positive(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"counts of 1 or more, as 1,2,4, not {text!r}") from None


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """--workers 1,2,4, --partitions, --executions, --idle and the runtime bench's Kafka options."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    add_kafka_options(parser)
    parser.add_argument(
        "--workers", type=_worker_counts, default=[1, 2, 4], metavar="N,N,...",
        help="worker counts to run, one after the other (default 1,2,4)",
    )  # fmt: skip
    parser.add_argument(
        "--partitions", type=positive, default=4, help="partitions per topic (default 4)"
    )
    parser.add_argument(
        "--executions", type=positive, default=600, help="fan-outs at once (default 600)"
    )
    parser.add_argument(
        "--idle", type=_seconds, default=5.0, metavar="SECONDS",
        help="each worker's CPU per second over SECONDS with nothing flowing (default 5)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    kafka, embedded = bench_kafka(args)
    try:
        for count in args.workers:
            figures = run_workers(kafka, embedded, count, args)
            print(format_figures(figures, args.partitions, embedded is not None))
            print(f"  load average (1, 5, 15 min) at the end: {os.getloadavg()}", flush=True)
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
