"""What following a topic costs a read model's projection: CPU per record of a steady stream.

An embedded broker, a 4-partition topic and a producer sending `--rate` lifecycle-sized
records a second (300 bytes, a lifecycle record's seven headers) in small batches, as a
loaded worker's lifecycle topic grows. A `TopicProjection` with a store that keeps nothing
follows it, in a process of its own with the worker's garbage collector settings, and prints
the CPU time (all its threads, librdkafka's too) over `--seconds` per record it read.

Prints figures; never a pass/fail test. Run:
`python bench/projection_bench.py [--rate N] [--seconds S] [--rounds R] [--compare TREE]`.

`--compare TREE`: TREE's projection (another checkout's source tree, put first on
PYTHONPATH, run with this virtualenv) follows the same stream at the same time as this
tree's, each round, so both see the same machine; judge a change by the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).parents[1]
TOPIC = "bench.lifecycle"
HEADERS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"0123456789abcdef0123456789abcdef/a/1/node.completed"),
    ("ce_source", b"/braidflow"),
    ("ce_type", b"io.braidflow.lifecycle.node.completed"),
    ("ce_subject", b"0123456789abcdef0123456789abcdef"),
    ("content-type", b"application/avro"),
    ("ce_nodetype", b"task"),
]
WARM_UP_S = 3.0


class NoStore:
    """A projection store that keeps nothing: what is measured is the following."""

    def positions(self) -> dict[TopicPartition, int]:
        return {}

    def reset(self) -> None:
        pass

    @contextlib.contextmanager
    def claimed(self, partitions: object) -> Iterator[dict[TopicPartition, int]]:
        yield {}

    async def off_loop(self, call: Any, *args: Any) -> Any:
        return call(*args)


def _cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def follow(address: str, seconds: float) -> None:
    """Follow the topic at `address`; print records read and CPU seconds over `seconds`."""
    from braidflow.connectors.projection import TopicProjection
    from braidflow.kafka_connection import KafkaConnection
    from braidflow.runtime.collector import settle_collector

    settle_collector()
    read = 0

    def apply(records: Sequence[Any], positions: Mapping[TopicPartition, int]) -> None:
        nonlocal read
        for record in records:
            for _name, _value in record.headers:
                pass
        read += len(records)

    projection = TopicProjection(
        NoStore(), apply, KafkaConnection.plain(address), TOPIC, 100, name="bench"
    )
    await projection.start()
    await asyncio.sleep(WARM_UP_S)
    cpu, before = _cpu_s(), read
    await asyncio.sleep(seconds)
    print(read - before, _cpu_s() - cpu, flush=True)
    await projection.stop()


def produce(address: str, rate: int, seconds: float) -> int:
    """Send `rate` records a second for `seconds`, a few at a time; the count sent."""
    # Quiet: the broker stops under it at the end of each round.
    producer = Producer(
        {"bootstrap.servers": address, "linger.ms": 0, "log.connection.close": False}
    )
    began, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - began) < seconds:
        while sent < int(elapsed * rate):
            producer.produce(TOPIC, b"x" * 300, key=b"ex-%d" % (sent % 997), headers=HEADERS)
            sent += 1
        producer.poll(0)
        time.sleep(0.004)
    producer.flush(30)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="records a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", type=Path, metavar="TREE")
    parser.add_argument("--follow", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.follow:
        asyncio.run(follow(args.follow, args.seconds))
        return

    from braidflow.connectors.broker import EmbeddedBroker

    trees = [("this", ROOT)]
    if args.compare is not None:
        trees.insert(0, (str(args.compare), args.compare.resolve()))
    per_record: dict[str, list[float]] = {name: [] for name, _ in trees}
    seconds = str(args.seconds)
    for round_ in range(1, args.rounds + 1):
        broker = EmbeddedBroker().start()
        try:
            admin = AdminClient(
                {"bootstrap.servers": broker.address, "log.connection.close": False}
            )
            for created in admin.create_topics([NewTopic(TOPIC, 4, 1)]).values():
                created.result(30)
            readers = {
                name: subprocess.Popen(
                    [sys.executable, __file__, "--follow", broker.address, "--seconds", seconds],
                    env={**os.environ, "PYTHONPATH": str(tree)},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                for name, tree in trees
            }
            sent = produce(broker.address, args.rate, args.seconds + 2 * WARM_UP_S)
            figures = []
            for name, reader in readers.items():
                out, _ = reader.communicate(timeout=60)
                records, cpu_s = out.split()
                us = float(cpu_s) * 1e6 / max(int(records), 1)
                per_record[name].append(us)
                figures.append(f"{name}: {int(records):,} records, {us:.2f} µs CPU each")
            load = os.getloadavg()[0]
            print(f"round {round_} ({sent:,} sent, load {load:.1f}): " + "; ".join(figures))
        finally:
            broker.stop()
    for name, values in per_record.items():
        print(f"  {name}: median {statistics.median(values):.2f} µs CPU per record")
    if args.compare is not None:
        ratio = statistics.median(per_record["this"]) / statistics.median(
            per_record[str(args.compare)]
        )
        print(f"  this / {args.compare}: {ratio:.2f} x")


if __name__ == "__main__":
    main()
