"""Runtime figures on a real broker: throughput of the fan-out/fan-in workflow with no-op
tasks on one worker, end-to-end latency of a 3-node sequential workflow at low load, and, in
the same run, the bare Kafka round trip (produce, consume, produce, consume) as the floor.

Prints figures; never a pass/fail test. Run: `make bench-runtime` (or
`python bench/runtime_bench.py [--broker HOST:PORT] [--kafka-config FILE] [--executions N]`).

`--idle S`: after the warm-up, the worker's CPU per second over S seconds with nothing flowing
(what polling and scanning cost while nothing is due; docs/performance.md#runtime).
`--chain-only`: only the bare round trip and the 3-node chain (`--chains` of them), for
judging a latency change quickly, back to back (docs/performance.md#runtime).

The chain's starts go through a producer with the floor's settings (`linger_ms=0`, every other
setting aiokafka's default), so that the chain / floor ratio compares like with like: the
fan-out's producer lingers 1 ms to fill its requests, which a lone start would wait out in full
(until 2026-12-07 the chain's starts paid it too).

`--compare-stats N`: N rounds, each a worker with the stats on then one with `--no-stats`, on
the same broker, alternating, so both see the same machine; prints what the stream analytics
cost per transition (docs/performance.md#stats).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from braidflow.client_cli import Api, ApiUnreachable
from braidflow.connectors.broker import EmbeddedBroker, free_port
from braidflow.engine import StartExecution
from braidflow.kafka_connection import KafkaConnection, kafka_connection
from braidflow.schemas import decode_event, encode_transition

HERE = Path(__file__).parent
FETCH_WAIT_MS = 5
# The floor's producer settings; the chain's starts go with the same (module docstring).
UNBATCHED = {"linger_ms": 0}

FAN = """
id: bench-fan
nodes:
  - {id: split, type: parallel}
  - {id: a, type: task, params: {handler: bench.noop}}
  - {id: b, type: task, params: {handler: bench.noop}}
  - {id: c, type: task, params: {handler: bench.noop}}
  - {id: gather, type: join}
  - {id: done, type: end, params: {output: {all: "${nodes.gather.output}"}}}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: split, to: c}
  - {from: a, to: gather}
  - {from: b, to: gather}
  - {from: c, to: gather}
  - {from: gather, to: done}
"""
# Issue 18 counts a fan-out's transitions as its node moves: the start, split, a, b, c,
# gather, done (1,071 transitions/s at 153 executions/s). CPU per transition divides by these,
# so that it stays comparable when moves share a step and a record.
FAN_TRANSITIONS = 7
# Its records on the transitions topic: the start, the split's RunNode, a result per task (work
# nodes are dispatched, and the join and the end run, in the step that readies them).
FAN_RECORDS = 1 + 1 + 3

CHAIN = """
id: bench-chain
nodes:
  - {id: first, type: task, params: {handler: bench.noop}}
  - {id: second, type: task, params: {handler: bench.noop}}
  - {id: done, type: end, params: {output: {ok: true}}}
edges:
  - {from: first, to: second}
  - {from: second, to: done}
"""
# A chain's moves: the start, first, second, done; its records are 3 (the start, two task
# results: the second's step runs the end).
CHAIN_TRANSITIONS = 4
# Chain executions timed one after the other (bench/peer_celery.py times Celery's as many).
CHAIN_SAMPLES = 200


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def from_the_end(consumer: AIOKafkaConsumer) -> None:
    """Start `consumer` at the end of its partitions, resolved now: `seek_to_end` alone only
    marks them for a reset the fetcher makes later, so a record written in between (a start
    the bench is about to cause) would be skipped.
    """
    await consumer.start()
    await consumer.seek_to_end()
    for partition in consumer.assignment():
        await consumer.position(partition)


async def bare_round_trip(kafka: KafkaConnection, samples: int = 300) -> list[float]:
    """Produce to A, consume, produce to B, consume: two hops, as one transition does."""
    first, second = f"bench-hop-{uuid.uuid4().hex[:6]}", f"bench-hop-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(**kafka.aiokafka())
    await admin.start()
    await admin.create_topics([NewTopic(first, 1, 1), NewTopic(second, 1, 1)])
    await admin.close()
    producer = AIOKafkaProducer(**kafka.aiokafka(), **UNBATCHED)
    consumers = [
        AIOKafkaConsumer(topic, **kafka.aiokafka(), fetch_max_wait_ms=FETCH_WAIT_MS)
        for topic in (first, second)
    ]
    await producer.start()
    for consumer in consumers:
        await from_the_end(consumer)
    timings = []
    for i in range(samples):
        began = time.perf_counter()
        await producer.send_and_wait(first, b"x", key=str(i).encode())
        await consumers[0].getone()
        await producer.send_and_wait(second, b"x", key=str(i).encode())
        await consumers[1].getone()
        timings.append(time.perf_counter() - began)
    await producer.stop()
    for consumer in consumers:
        await consumer.stop()
    return timings


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def add_kafka_options(parser: argparse.ArgumentParser) -> None:
    """--broker and --kafka-config, as the worker takes them; neither: the embedded broker."""
    parser.add_argument("--broker", help="use this broker instead of the embedded one")
    parser.add_argument(
        "--kafka-config", help="Kafka client properties file (docs/kafka.md), as the worker's"
    )


def bench_kafka(args: argparse.Namespace) -> tuple[KafkaConnection, EmbeddedBroker | None]:
    """The connection of the options, or a started embedded broker's (stop it after)."""
    if args.broker or args.kafka_config:
        return kafka_connection(args.broker, args.kafka_config), None
    embedded = EmbeddedBroker().start()
    return KafkaConnection.plain(embedded.address), embedded


def start_worker(
    kafka: KafkaConnection,
    prefix: str,
    data_dir: Path,
    port: int,
    partitions: int = 4,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BRAIDFLOW_FETCH_MAX_WAIT_MS": str(FETCH_WAIT_MS),
        "BRAIDFLOW_BACKGROUND_FETCH_WAIT_MS": "100",
        "BRAIDFLOW_REBALANCE_TIMEOUT_S": "3",
        "BRAIDFLOW_SESSION_TIMEOUT_S": "5",
        "BRAIDFLOW_PARTITIONS": str(partitions),
    }
    # The worker gets the bench's own connection, written out as a properties file.
    properties = data_dir / "kafka.properties"
    properties.write_text("".join(f"{k}={v}\n" for k, v in kafka.confluent().items()))
    command = [
        sys.executable, "-m", "braidflow.cli", "worker", "--kafka-config", str(properties),
        "--prefix", prefix, "--data-dir", str(data_dir), "--api-port", str(port),
        "--handlers", str(HERE / "noop_handlers.py"), "--loglevel", os.environ.get("BENCH_LOGLEVEL", "warning"),
        # A bench measures the engine on 127.0.0.1: no keys to make or send.
        "--no-auth", *extra,
    ]  # fmt: skip
    log = open(data_dir / "worker.log", "wb")  # noqa: SIM115
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(api: str, worker: subprocess.Popen[bytes], timeout_s: float = 60) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited; see its log")
        with contextlib.suppress(ApiUnreachable):
            if Api.at(api).call("GET", "/ready").status == 200:
                return time.monotonic() - began
        time.sleep(0.05)
    raise RuntimeError("the worker was not ready in time")


class Completions:
    """Follows the lifecycle topic and notes when each execution completed."""

    def __init__(self, kafka: KafkaConnection, topic: str) -> None:
        self.done: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            topic, **kafka.aiokafka(), fetch_max_wait_ms=FETCH_WAIT_MS,
            auto_offset_reset="latest",
        )  # fmt: skip

    async def start(self) -> None:
        await from_the_end(self._consumer)
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        async for record in self._consumer:
            event = decode_event(record.value)
            if event.type in ("workflow.completed", "workflow.failed"):
                self.done.setdefault(event.execution_id, time.perf_counter())
                self.changed.set()

    async def wait_for(self, ids: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ids <= self.done.keys():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(ids - self.done.keys())} executions did not finish")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                continue

    async def stop(self) -> None:
        self._task.cancel()
        await self._consumer.stop()


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) a process has used so far; 0 when there is no process to read.

    On a 2-core machine shared with the broker, CPU per transition is steadier
    than transitions per second, which anything else running takes from.
    """
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    kafka: KafkaConnection,
    prefix: str,
    api: str,
    executions: int,
    pids: dict[str, int | None],
    idle_s: float = 0.0,
    chains: int = CHAIN_SAMPLES,
    probe: Path | None = None,
) -> dict[str, float]:
    """The figures of one worker; no fan-out/fan-in when `executions` is 0. `probe`: where to
    note each chain's start sent, acknowledged and seen completed (`bench/chain_probe.py`)."""
    for text in (FAN, CHAIN):
        reply = Api.at(api).call("POST", "/workflows", text.encode(), "application/yaml")
        assert reply.status in (200, 201), reply
    batching = AIOKafkaProducer(**kafka.aiokafka(), linger_ms=1)
    unbatched = AIOKafkaProducer(**kafka.aiokafka(), **UNBATCHED)
    for producer in (batching, unbatched):
        await producer.start()
    completions = Completions(kafka, f"{prefix}.lifecycle")
    await completions.start()

    acked: dict[str, float] = {}

    def on_ack(execution_id: str) -> Callable[[asyncio.Future[Any]], None]:
        def done(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is None:
                acked[execution_id] = time.perf_counter()

        return done

    async def start(workflow: str, producer: AIOKafkaProducer = batching) -> str:
        execution_id = uuid.uuid4().hex
        transition = StartExecution(
            f"{execution_id}/start", execution_id, int(time.time() * 1000), workflow, 1, {}
        )
        future = await producer.send(
            f"{prefix}.transitions", encode_transition(transition), key=execution_id.encode()
        )
        if probe is not None:
            future.add_done_callback(on_ack(execution_id))
        return execution_id

    # Warm up: the first executions pay for connections and caches.
    warm = {await start("bench-fan") for _ in range(20)}
    await batching.flush()
    await completions.wait_for(warm, 60)
    idle = {}
    if idle_s > 0:
        idle_before = cpu_seconds(pids["worker"])
        await asyncio.sleep(idle_s)
        idle["worker_idle_cpu_ms_per_s"] = (
            (cpu_seconds(pids["worker"]) - idle_before) * 1000 / idle_s
        )

    fan: dict[str, float] = {}
    if executions:
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        began = time.perf_counter()
        ids = {await start("bench-fan") for _ in range(executions)}
        await batching.flush()
        await completions.wait_for(ids, 300)
        elapsed = max(completions.done[i] for i in ids) - began
        transitions = executions * FAN_TRANSITIONS
        fan = {
            "executions_per_s": executions / elapsed,
            "transitions_per_s": transitions / elapsed,
            **{
                f"{name}_cpu_ms": (cpu_seconds(pid) - cpu_before[name]) * 1000 / transitions
                for name, pid in pids.items()
            },
        }

    latencies = []
    noted: list[tuple[float, float, float]] = []
    chain_cpu_before = cpu_seconds(pids["worker"])
    for _ in range(chains):
        sent = time.perf_counter()
        execution_id = await start("bench-chain", unbatched)
        await unbatched.flush()
        await completions.wait_for({execution_id}, 30)
        latencies.append(completions.done[execution_id] - sent)
        noted.append((sent, acked.get(execution_id, 0.0), completions.done[execution_id]))
    chain_cpu = cpu_seconds(pids["worker"]) - chain_cpu_before
    await completions.stop()
    for producer in (batching, unbatched):
        await producer.stop()
    if probe is not None:
        probe.write_text("".join(f"#chain {a:.6f} {b:.6f} {c:.6f}\n" for a, b, c in noted))
    return {
        **fan,
        "chain_p50_ms": statistics.median(latencies) * 1000,
        "chain_p99_ms": _percentile(latencies, 99) * 1000,
        "chain_worker_cpu_ms": chain_cpu * 1000 / (chains * CHAIN_TRANSITIONS) if chains else 0.0,
        **idle,
    }


def run_worker(
    kafka: KafkaConnection,
    embedded: EmbeddedBroker | None,
    executions: int,
    extra: tuple[str, ...] = (),
    with_floor: bool = True,
    idle_s: float = 0.0,
    chains: int = CHAIN_SAMPLES,
    probe: Path | None = None,
) -> tuple[float, list[float], dict[str, float]]:
    """Start a worker of its own (prefix, data dir), measure it, stop it: (ready after, the
    bare round trips when `with_floor`, figures)."""
    with tempfile.TemporaryDirectory(prefix="braidflow-bench-") as tmp:
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        worker = start_worker(kafka, prefix, Path(tmp), port, extra=extra)
        try:
            ready_s = wait_ready(api, worker)
            floor = asyncio.run(bare_round_trip(kafka)) if with_floor else []
            pids = {"worker": worker.pid, "broker": embedded.pid if embedded else None}
            figures = asyncio.run(
                measure(
                    kafka, prefix, api, executions, pids, idle_s=idle_s, chains=chains, probe=probe
                )
            )
        except BaseException:
            print((Path(tmp) / "worker.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    return ready_s, floor, figures


def compare_stats(
    kafka: KafkaConnection, embedded: EmbeddedBroker | None, args: argparse.Namespace
) -> None:
    """Stats on against `--no-stats`, alternating, `args.compare_stats` rounds."""
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for round_ in range(args.compare_stats):
        for mode, extra in (("on", ()), ("off", ("--no-stats",))):
            _, _, figures = run_worker(kafka, embedded, args.executions, extra, with_floor=False)
            runs[mode].append(figures)
            print(
                f"  round {round_ + 1} stats {mode:3}  worker CPU/transition"
                f" {figures['worker_cpu_ms']:6.2f} ms  executions/s {figures['executions_per_s']:6.0f}"
                f"  chain p50 {figures['chain_p50_ms']:6.1f} ms",
                flush=True,
            )
    cpu = {mode: statistics.median(f["worker_cpu_ms"] for f in got) for mode, got in runs.items()}
    rate = {
        mode: statistics.median(f["executions_per_s"] for f in got) for mode, got in runs.items()
    }
    print(
        f"fan-out/fan-in, {args.executions} executions at once, medians of {args.compare_stats} rounds"
    )
    print(
        f"  worker CPU per transition  on {cpu['on']:6.2f} ms  off {cpu['off']:6.2f} ms  on/off {cpu['on'] / cpu['off']:5.2f} x"
    )
    print(
        f"  executions/s               on {rate['on']:6.0f}     off {rate['off']:6.0f}     on/off {rate['on'] / rate['off']:5.2f} x"
    )
    print(f"  load average (1, 5, 15 min) at the end: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_kafka_options(parser)
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument(
        "--compare-stats", type=int, default=0, metavar="ROUNDS",
        help="measure workers with the stats on and off (--no-stats), alternating, ROUNDS rounds",
    )  # fmt: skip
    parser.add_argument(
        "--idle", type=float, default=0.0, metavar="SECONDS",
        help="also measure the worker's CPU per second over SECONDS with nothing flowing",
    )  # fmt: skip
    parser.add_argument(
        "--chain-only", action="store_true",
        help="only the bare round trip and the 3-node chain: no fan-out/fan-in",
    )  # fmt: skip
    parser.add_argument(
        "--chains", type=int, default=CHAIN_SAMPLES, help="3-node chains, one at a time"
    )
    parser.add_argument(
        "--probe", metavar="FILE",
        help="note each transition's stages in FILE (bench/chain_probe.py; read it with that)",
    )  # fmt: skip
    args = parser.parse_args()
    extra: tuple[str, ...] = ()
    probe = None
    if args.probe:
        os.environ["BRAIDFLOW_CHAIN_PROBE"] = str(Path(args.probe).resolve())
        extra = ("--handlers", str(HERE / "chain_probe.py"))
        probe = Path(f"{args.probe}.chains")
    kafka, embedded = bench_kafka(args)
    executions = 0 if args.chain_only else args.executions
    try:
        if args.compare_stats:
            compare_stats(kafka, embedded, args)
            return
        ready_s, floor, figures = run_worker(
            kafka, embedded, executions, extra, idle_s=args.idle, chains=args.chains, probe=probe
        )
    finally:
        if embedded is not None:
            embedded.stop()
    print_figures(kafka, embedded, executions, ready_s, floor, figures, args.idle)


def print_figures(
    kafka: KafkaConnection,
    embedded: EmbeddedBroker | None,
    executions: int,
    ready_s: float,
    floor: list[float],
    figures: dict[str, float],
    idle_s: float = 0.0,
) -> None:
    floor_p50 = statistics.median(floor) * 1000
    print(f"broker: {'embedded Tansu' if embedded else kafka.describe()}; one worker, 4 partitions")
    print(f"  worker ready after                 {ready_s:8.1f} s")
    print(f"  bare Kafka round trip, 2 hops p50  {floor_p50:8.1f} ms   (the floor)")
    print(f"  bare Kafka round trip, 2 hops p99  {_percentile(floor, 99) * 1000:8.1f} ms")
    if executions:
        print(f"fan-out/fan-in, 3 no-op tasks, {executions} executions at once")
        print(f"  executions/s                       {figures['executions_per_s']:8.0f}")
        print(
            f"  transitions/s                      {figures['transitions_per_s']:8.0f}   (target >= 1,000)"
        )
        print(f"  worker CPU per transition          {figures['worker_cpu_ms']:8.2f} ms")
        print(
            f"  worker CPU per execution           {figures['worker_cpu_ms'] * FAN_TRANSITIONS:8.2f} ms"
            f"   ({FAN_TRANSITIONS} transitions each, {FAN_RECORDS} records)"
        )
        if embedded is not None:
            print(f"  broker CPU per transition          {figures['broker_cpu_ms']:8.2f} ms")
    print("3-node sequential workflow, one at a time, start to workflow.completed")
    print(f"  p50                                {figures['chain_p50_ms']:8.1f} ms   (target < 50)")
    print(f"  p99                                {figures['chain_p99_ms']:8.1f} ms")
    print(f"  p50 / bare round trip              {figures['chain_p50_ms'] / floor_p50:8.1f} x")
    print(
        f"  worker CPU per transition          {figures['chain_worker_cpu_ms']:8.2f} ms"
        f"   ({CHAIN_TRANSITIONS} a chain)"
    )
    if "worker_idle_cpu_ms_per_s" in figures:
        print(f"idle worker, nothing flowing for {idle_s:.0f} s")
        print(f"  worker CPU per second              {figures['worker_idle_cpu_ms_per_s']:8.1f} ms")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
