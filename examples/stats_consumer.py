"""braidflow's per-workflow stats, computed outside braidflow from its lifecycle topic with
stock tools: confluent-kafka, fastavro and ddsketch (docs/analytics.md).

    python examples/stats_consumer.py --broker 127.0.0.1:9092 --topic braidflow.lifecycle

Reads every partition from the beginning to its end (no consumer group), and prints one JSON
line per tenant, workflow and minute: the counts and duration quantiles that
`GET /api/v1/stats?workflow=ID&window=1m` shows for it (without the nodes).
"""

from __future__ import annotations

import argparse
import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from ddsketch import DDSketch

SCHEMAS = Path(__file__).resolve().parent.parent / "braidflow" / "schemas" / "avro"
ENDS = {
    "workflow.completed": "completed",
    "workflow.failed": "failed",
    "workflow.cancelled": "cancelled",
}
COUNTED = {
    "workflow.started": "started",
    "node.retrying": "retries",
    "node.dead_lettered": "dead_letters",
    "workflow.sla_breached": "sla_breached",
}
TIMEOUTS = {"Timeout", "TimeoutError"}  # a failure by a deadline counts as timed_out
NAMES = (
    "started",
    "completed",
    "failed",
    "cancelled",
    "timed_out",
    "retries",
    "dead_letters",
    "sla_breached",
)


def lifecycle_events(consumer: Consumer, topic: str, schema: Any) -> list[dict[str, Any]]:
    """Every event on `topic` now, in each partition's order."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in partitions
    }
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    events, position = [], dict.fromkeys(partitions, 0)
    while any(position[p] < ends[p] for p in partitions):
        for message in consumer.consume(500, timeout=1.0):
            if message.error() is None:
                position[message.partition()] = message.offset() + 1
                # Avro single-object encoding: 2 marker bytes and an 8-byte schema fingerprint.
                events.append(fastavro.schemaless_reader(io.BytesIO(message.value()[10:]), schema))
    return events


def stats(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts and duration quantiles (1% relative accuracy) per tenant, workflow and minute."""
    counts: dict[tuple[str, str, int], Counter[str]] = defaultdict(Counter)
    durations: dict[tuple[str, str, int], DDSketch] = defaultdict(lambda: DDSketch(0.01))
    for event in events:
        bucket = (event["tenant"], event["workflow_id"], event["at"] // 60_000 * 60_000)
        kind = event["type"]
        if kind in COUNTED:
            counts[bucket][COUNTED[kind]] += 1
        elif kind in ENDS:
            timed_out = (event["error"] or {}).get("type") in TIMEOUTS
            counts[bucket]["timed_out" if timed_out else ENDS[kind]] += 1
            # An end carries when the execution started (null: not timed).
            began = event.get("started_at")
            if began is not None:
                durations[bucket].add(event["at"] - began)
    lines = []
    for (tenant, workflow, start), counted in sorted(counts.items()):
        sketch = durations.get((tenant, workflow, start))
        quantiles = {
            name: None
            if sketch is None or sketch.count == 0
            else round(sketch.get_quantile_value(q), 1)
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        lines.append(
            {
                "tenant": tenant,
                "workflow_id": workflow,
                "start": datetime.fromtimestamp(start / 1000, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                **{name: counted[name] for name in NAMES},
                "duration_ms": quantiles,
            }
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", default="braidflow.lifecycle")
    parser.add_argument(
        "-X",
        dest="properties",
        action="append",
        default=[],
        help="a librdkafka property, name=value",
    )
    args = parser.parse_args()
    config = dict(p.split("=", 1) for p in args.properties)
    consumer = Consumer(
        {
            **config,
            "bootstrap.servers": args.broker,
            "group.id": "stats-example",
            "enable.auto.commit": False,
        }
    )
    schema = fastavro.schema.load_schema(SCHEMAS / "braidflow.LifecycleEvent.avsc")
    try:
        for line in stats(lifecycle_events(consumer, args.topic, schema)):
            print(json.dumps(line))
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
