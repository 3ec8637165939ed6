"""Streaming versus polling: what readers of executions cost the engine.

Thirty 5-branch fan-outs are started at once through the API, on one worker, with
(a) no readers, (b) thirty clients each polling `GET /executions/{id}` every 10 ms,
(c) every 100 ms, (d) thirty clients on `GET /executions/{id}?wait=60s`, (e) thirty on the
execution's event stream. Each execution's time is from its start request to its
`workflow.completed` on the lifecycle topic (read by the bench). Rounds of every scenario
are interleaved, each round in another order, so a neighbour's load spreads over all of
them; the medians are printed, each with its ratio to (a), and the worker's CPU time per
round (steadier than times on a shared machine). Target: (d) and (e) within 10% of (a).

Prints figures; never a pass/fail test. Run: `make bench-live` (or
`python bench/live_bench.py [--broker HOST:PORT] [--rounds N]`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from runtime_bench import (
    Completions,
    add_kafka_options,
    bench_kafka,
    cpu_seconds,
    start_worker,
    wait_ready,
)

from braidflow.client_cli import Api
from braidflow.connectors.broker import free_port

BRANCHES = 5
EXECUTIONS = 30
FAN = "\n".join(
    [
        "id: live-fan",
        "nodes:",
        "  - {id: split, type: parallel}",
        *(
            f"  - {{id: t{n}, type: task, params: {{handler: bench.noop}}}}"
            for n in range(BRANCHES)
        ),
        "  - {id: gather, type: join}",
        "  - {id: done, type: end, params: {output: {all: '${nodes.gather.output}'}}}",
        "edges:",
        *(f"  - {{from: split, to: t{n}}}" for n in range(BRANCHES)),
        *(f"  - {{from: t{n}, to: gather}}" for n in range(BRANCHES)),
        "  - {from: gather, to: done}",
    ]
)
TERMINAL = {"completed", "failed", "cancelled"}

Reader = Callable[[aiohttp.ClientSession, str, str], Awaitable[None]]


def polling(interval_s: float) -> Reader:
    async def read(session: aiohttp.ClientSession, api: str, execution_id: str) -> None:
        while True:
            async with session.get(f"{api}/api/v1/executions/{execution_id}") as response:
                body = await response.read()
            if response.status == 200 and json.loads(body)["status"] in TERMINAL:
                return
            await asyncio.sleep(interval_s)

    return read


async def waiting(session: aiohttp.ClientSession, api: str, execution_id: str) -> None:
    async with session.get(f"{api}/api/v1/executions/{execution_id}?wait=60s") as response:
        body = await response.read()
    assert json.loads(body)["status"] in TERMINAL, body


async def streaming(session: aiohttp.ClientSession, api: str, execution_id: str) -> None:
    async with session.get(f"{api}/api/v1/executions/{execution_id}/events") as response:
        assert response.status == 200, response.status
        async for _ in response.content:
            pass  # the stream ends after the execution's end


SCENARIOS: dict[str, Reader | None] = {
    "(a) no readers": None,
    "(b) polling every 10 ms": polling(0.010),
    "(c) polling every 100 ms": polling(0.100),
    "(d) ?wait=60s": waiting,
    "(e) event stream": streaming,
}


async def one_round(api: str, completions: Completions, reader: Reader | None) -> list[float]:
    """Start EXECUTIONS fan-outs at once; each one's seconds from start request to its end."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sent: dict[str, float] = {}
        readers = []

        async def start() -> None:
            began = time.perf_counter()
            async with session.post(
                f"{api}/api/v1/workflows/live-fan/executions", json={"input": {}}
            ) as response:
                execution_id = (await response.json())["execution_id"]
            sent[execution_id] = began
            if reader is not None:
                readers.append(asyncio.create_task(reader(session, api, execution_id)))

        await asyncio.gather(*(start() for _ in range(EXECUTIONS)))
        await completions.wait_for(set(sent), 120)
        await asyncio.gather(*readers)
    return [completions.done[e] - began for e, began in sent.items()]


async def measure(
    kafka_topic: str, api: str, rounds: int, kafka: object, worker_pid: int
) -> dict[str, list[tuple[float, float, float]]]:
    """Per scenario, per round: the mean and the longest execution time, and the worker's
    CPU seconds."""
    reply = Api.at(api).call("POST", "/workflows", FAN.encode(), "application/yaml")
    assert reply.status in (200, 201), reply
    completions = Completions(kafka, kafka_topic)  # type: ignore[arg-type]
    await completions.start()
    await one_round(api, completions, None)  # warm up: connections, caches
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in SCENARIOS}
    names = list(SCENARIOS)
    for n in range(rounds):
        # Each round in another order: what one scenario leaves behind (a projection
        # catching up, a broker busy) falls on each of the others in turn.
        for name in names[n % len(names) :] + names[: n % len(names)]:
            reader = SCENARIOS[name]
            cpu = cpu_seconds(worker_pid)
            times = await one_round(api, completions, reader)
            cpu = cpu_seconds(worker_pid) - cpu
            figures[name].append((statistics.mean(times), max(times), cpu))
            await asyncio.sleep(0.5)  # let the last readers' connections close
    await completions.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_kafka_options(parser)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="braidflow-bench-") as tmp:
        kafka, embedded = bench_kafka(args)
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        worker = start_worker(kafka, prefix, Path(tmp), port)
        try:
            wait_ready(api, worker)
            load = os.getloadavg()[0]
            figures = asyncio.run(
                measure(f"{prefix}.lifecycle", api, args.rounds, kafka, worker.pid)
            )
        except BaseException:
            print((Path(tmp) / "worker.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            if embedded is not None:
                embedded.stop()
    broker = "embedded Tansu" if embedded else kafka.describe()
    print(f"broker: {broker}; one worker, 4 partitions; load average at start {load:.1f}")
    print(
        f"{EXECUTIONS} fan-outs of {BRANCHES} no-op branches at once, {args.rounds} rounds;"
        " medians over rounds"
    )
    print(f"  {'readers':<26} {'mean per execution':>19} {'last one':>16} {'worker CPU':>17}")
    base = [statistics.median(r[i] for r in figures["(a) no readers"]) for i in range(3)]
    for name, rounds in figures.items():
        mean, last, cpu = (statistics.median(r[i] for r in rounds) for i in range(3))
        print(
            f"  {name:<26} {mean * 1000:7.0f} ms {mean / base[0]:5.2f}x"
            f" {last * 1000:7.0f} ms {last / base[1]:5.2f}x"
            f" {cpu * 1000:7.0f} ms {cpu / base[2]:5.2f}x"
        )


if __name__ == "__main__":
    main()
