"""Where a transition's time goes, stage by stage: loaded into a bench worker with `--handlers`.

With `BRAIDFLOW_CHAIN_PROBE=FILE` set, every record of the transitions topic this worker sends
or reads gets a line per stage in FILE: `stage partition offset seconds` (perf_counter, which
is CLOCK_MONOTONIC: comparable across processes). Stages, in order:

- `queued`: handed to a producer (the orchestrator's outbox, the executor's result);
- `acked`: the broker acknowledged it;
- `arrived`: the consumer's fetch response brought it (aiokafka's fetcher);
- `fetched`: the consumer handed it out (Faust: `getmany` on its consumer thread);
- `delivered`: the consumer's records reached the event loop of the agents;
- `handling`: the orchestrator took it; `handled`: it returned.

Each fetch of the transitions topic adds `#fetch sent answered partitions`. `python
bench/chain_probe.py FILE` prints each stage's median per hop, and whether a fetch was already
waiting at the broker when a record was acknowledged (docs/performance-history.md, "The 3-node
chain, per hop"). Measurement only: nothing in braidflow imports it.
"""

from __future__ import annotations

import atexit
import itertools
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

STAGES = ("queued", "acked", "arrived", "fetched", "delivered", "handling", "handled")


def install(path: str) -> None:
    """Patch the worker's send and receive points to write stage lines to `path`."""
    from aiokafka.consumer import fetcher
    from faust.transport import consumer as faust_consumer
    from faust.transport.drivers import aiokafka as faust_aiokafka

    from braidflow.streams import lone_request, orchestrator, publisher, result_producer

    out = open(path, "a", buffering=1 << 16)  # noqa: SIM115
    atexit.register(out.flush)
    now = time.perf_counter

    def note(stage: str, partition: int, offset: int, at: float) -> None:
        out.write(f"{stage} {partition} {offset} {at:.6f}\n")

    def transitions_topic(topic: str) -> bool:
        return topic.endswith(".transitions")

    def acknowledged(topic: str, partition: int, offset: int, queued: float) -> None:
        if transitions_topic(topic):
            note("queued", partition, offset, queued)
            note("acked", partition, offset, now())
        elif topic.endswith(".lifecycle"):
            out.write(f"#lifecycle {queued:.6f} {now():.6f}\n")

    def on_ack(queued: float) -> Callable[[Any], None]:
        def done(future: Any) -> None:
            if not future.cancelled() and future.exception() is None:
                meta = future.result()
                acknowledged(meta.topic, meta.partition, meta.offset, queued)

        return done

    queue = publisher.Publisher.queue

    async def probed_queue(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
        queued = now()
        future = await queue(self, topic, *args, **kwargs)
        future.add_done_callback(on_ack(queued))
        return future

    publisher.Publisher.queue = probed_queue  # type: ignore[method-assign]

    # The commit's records (the end step's `RunNode` and `workflow.completed` among them) go
    # without a future, told of their acknowledgement by a callback.
    queue_now = publisher.Publisher.queue_now

    def probed_queue_now(
        self: Any, topic: str, key: bytes, value: bytes, headers: Any, told: Any, argument: Any
    ) -> bool:
        queued = now()

        def probed_told(argument: Any, partition: int, offset: int, at: int) -> None:
            acknowledged(topic, partition, offset, queued)
            told(argument, partition, offset, at)

        return queue_now(self, topic, key, value, headers, probed_told, argument)

    publisher.Publisher.queue_now = probed_queue_now  # type: ignore[method-assign]

    produce = result_producer.ResultProducer._produce

    async def probed_produce(self: Any, key: bytes, value: bytes, headers: Any) -> Any:
        queued = now()
        sent = await produce(self, key, value, headers)
        note("queued", sent.partition, sent.offset, queued)
        note("acked", sent.partition, sent.offset, now())
        return sent

    result_producer.ResultProducer._produce = probed_produce  # type: ignore[method-assign]

    alone = lone_request.LoneRequests.send

    async def probed_alone(self: Any, topic: str, *args: Any) -> Any:
        sent = now()
        result = await alone(self, topic, *args)
        if result is not None:
            client = self._producer.client._client_id
            name = topic.rpartition(".")[2]
            out.write(f"#produce {sent:.6f} {now():.6f} 1 1 {client}-alone {name}\n")
        return result

    lone_request.LoneRequests.send = probed_alone  # type: ignore[method-assign]

    class ProbedFetchResult(fetcher.FetchResult):  # type: ignore[misc]
        def __init__(self, tp: Any, **kwargs: Any) -> None:
            super().__init__(tp, **kwargs)
            if transitions_topic(tp.topic):
                note("arrived", tp.partition, kwargs["partition_records"].next_fetch_offset, now())

    fetcher.FetchResult = ProbedFetchResult

    proc_fetch_request = fetcher.Fetcher._proc_fetch_request

    async def probed_proc_fetch_request(
        self: Any, assignment: Any, node_id: Any, request: Any
    ) -> Any:
        sent = now()
        try:
            return await proc_fetch_request(self, assignment, node_id, request)
        finally:
            parts = sum(len(p) for _, p in request.topics)
            if any(transitions_topic(t) for t, _ in request.topics):
                out.write(f"#fetch {sent:.6f} {now():.6f} {parts}\n")
            client = self._client._client_id
            out.write(f"#anyfetch {sent:.6f} {now():.6f} {client}\n")

    fetcher.Fetcher._proc_fetch_request = probed_proc_fetch_request

    from aiokafka.producer import sender

    produce_do = sender.SendProduceReqHandler.do

    async def probed_produce_do(self: Any, node_id: Any) -> Any:
        sent = now()
        try:
            return await produce_do(self, node_id)
        finally:
            tps = list(self._batches)
            mine = sum(1 for tp in tps if transitions_topic(tp.topic))
            client = self._client._client_id
            topics = ",".join(sorted({tp.topic.rpartition(".")[2] for tp in tps}))
            out.write(f"#produce {sent:.6f} {now():.6f} {len(tps)} {mine} {client} {topics}\n")

    sender.SendProduceReqHandler.do = probed_produce_do

    thread_class = faust_aiokafka.AIOKafkaConsumerThread
    fetch_records = thread_class._fetch_records

    async def probed_fetch_records(self: Any, *args: Any, **kwargs: Any) -> Any:
        records = await fetch_records(self, *args, **kwargs)
        at = now()
        for tp, batch in records.items():
            if transitions_topic(tp.topic):
                for record in batch:
                    note("fetched", tp.partition, record.offset, at)
        return records

    thread_class._fetch_records = probed_fetch_records

    getmany = faust_consumer.Consumer.getmany

    async def probed_getmany(self: Any, timeout: float) -> Any:
        async for tp, message in getmany(self, timeout):
            if transitions_topic(tp.topic):
                note("delivered", tp.partition, message.offset, now())
            yield tp, message

    faust_consumer.Consumer.getmany = probed_getmany  # type: ignore[method-assign]

    handle = orchestrator.Orchestrator.handle

    async def probed_handle(self: Any, record: Any, table: Any) -> None:
        note("handling", record.partition, record.offset, now())
        await handle(self, record, table)
        note("handled", record.partition, record.offset, now())

    orchestrator.Orchestrator.handle = probed_handle  # type: ignore[method-assign]


def report(path: str) -> None:
    """Each stage's median per hop, over the transitions seen at every stage."""
    times: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    fetches: list[tuple[float, float]] = []
    produces: list[tuple[float, float, int, int, str]] = []
    lifecycle: list[tuple[float, float]] = []
    all_fetches: list[tuple[float, float, str]] = []
    for line in open(path):  # noqa: SIM115
        if line.startswith("#anyfetch"):
            _, sent, answered, client = line.split()
            all_fetches.append((float(sent), float(answered), client))
            continue
        if line.startswith("#lifecycle"):
            _, queued, acked = line.split()
            lifecycle.append((float(queued), float(acked)))
            continue
        if line.startswith("#produce"):
            _, sent, answered, parts, mine, client, *_ = line.split()
            produces.append((float(sent), float(answered), int(parts), int(mine), client))
            continue
        if line.startswith("#fetch"):
            _, sent, answered, _ = line.split()
            fetches.append((float(sent), float(answered)))
            continue
        stage, partition, offset, at = line.split()
        times[(int(partition), int(offset))].setdefault(stage, float(at))
    # Faust's stages are missing when the transitions reader fetches (`transitions_reader`).
    stages = [s for s in STAGES if any(s in t for t in times.values())]
    # Handed over when acknowledged: handled before any fetch brought it.
    handed = [
        t for t in times.values()
        if {"queued", "acked", "handling", "handled"} <= t.keys()
        and t.get("arrived", float("inf")) > t["handling"]
    ]  # fmt: skip
    if produces:
        _produce_report(produces, handed)
    if handed:
        print(f"{len(handed)} transitions handed over at their acknowledgement")
        for before, after in itertools.pairwise(("queued", "acked", "handling", "handled")):
            gaps = [(t[after] - t[before]) * 1000 for t in handed]
            print(
                f"  {before:>9} -> {after:<9} p50 {statistics.median(gaps):6.2f} ms"
                f"  mean {statistics.mean(gaps):6.2f} ms"
            )
    whole = [
        t for t in times.values()
        if all(s in t for s in stages) and t["arrived"] <= t["handling"]
    ]  # fmt: skip
    print(f"{len(whole)} transitions seen at every stage ({len(times)} in all)")
    if not whole:
        return
    for before, after in itertools.pairwise(stages):
        gaps = [(t[after] - t[before]) * 1000 for t in whole]
        print(
            f"  {before:>9} -> {after:<9} p50 {statistics.median(gaps):6.2f} ms"
            f"  mean {statistics.mean(gaps):6.2f} ms"
        )
    hops = [(t["handling"] - t["queued"]) * 1000 for t in whole]
    print(f"  queued -> handling (a hop)  p50 {statistics.median(hops):6.2f} ms")
    if fetches:
        _fetch_report(sorted(fetches), whole)
    if os.path.exists(f"{path}.chains"):
        _chain_report(f"{path}.chains", times, sorted(lifecycle), all_fetches)


# The end runs in the second result's step: no hop of its own.
CHAIN_HOPS = ("start", "first's result", "second's result")


def _chain_report(
    path: str,
    times: dict[tuple[int, int], dict[str, float]],
    lifecycle: list[tuple[float, float]],
    fetches: list[tuple[float, float, str]],
) -> None:
    """One chain at a time, from the bench's start to its `workflow.completed` (the bench's
    notes in `path`): the median of each stage, and what a chain waits for in all."""
    parts: dict[str, list[float]] = defaultdict(list)
    chains = [tuple(map(float, line.split()[1:])) for line in open(path)]  # noqa: SIM115
    if not chains:
        return
    first, last = chains[0][0], chains[-1][2]
    answered = Counter(c for _, a, c in fetches if first <= a <= last)
    print(f"fetches answered during the chains ({last - first:.1f} s), per chain, by consumer")
    for client, count in answered.most_common():
        print(f"  {client:<40} {count / len(chains):6.1f}")
    for sent, start_acked, done in chains:
        hops = sorted(
            (t for t in times.values() if sent <= t.get("handling", 0) <= done),
            key=lambda t: t["handling"],
        )
        if len(hops) != len(CHAIN_HOPS) or not start_acked:
            continue
        ends = [a for q, a in lifecycle if hops[-1]["handling"] <= q and a <= done]
        if not ends:
            continue
        start = hops[0]
        parts["start: sent -> acknowledged (bench's producer)"].append(start_acked - sent)
        parts["start: acknowledged -> taken"].append(start["handling"] - start_acked)
        before = start
        for name, hop in zip(CHAIN_HOPS[1:], hops[1:], strict=True):
            parts[f"{name}: step before it, taken -> queued"].append(
                hop["queued"] - before["handling"]
            )
            parts[f"{name}: queued -> acknowledged"].append(hop["acked"] - hop["queued"])
            parts[f"{name}: acknowledged -> taken"].append(hop["handling"] - hop["acked"])
            before = hop
        parts["end: step taken -> workflow.completed acknowledged"].append(
            max(ends) - hops[-1]["handling"]
        )
        parts["end: acknowledged -> seen by the bench"].append(done - max(ends))
        parts["whole chain"].append(done - sent)
    if not parts:
        return
    print(f"{len(parts['whole chain'])} chains, p50 / mean of each stage")
    for name, gaps in parts.items():
        print(
            f"  {name:<58} {statistics.median(gaps) * 1000:6.2f} / {statistics.mean(gaps) * 1000:6.2f} ms"
        )


def _produce_report(
    produces: list[tuple[float, float, int, int, str]], handed: list[dict[str, float]]
) -> None:
    """Produce requests per producer: how long each took, how many partitions it named, and
    whether a transition queued found a request of its producer in flight."""
    by_client: dict[str, list[tuple[float, float, int, int, str]]] = defaultdict(list)
    for p in produces:
        by_client[p[4]].append(p)
    for client, requests in sorted(by_client.items()):
        took = [(b - a) * 1000 for a, b, *_ in requests]
        parts = [n for _, _, n, _, _ in requests]
        print(
            f"  produce {client}: {len(requests)} requests, p50 {statistics.median(took):.2f} ms,"
            f" partitions p50 {statistics.median(parts)} max {max(parts)}"
        )
    carrying = [p for p in produces if p[3]]
    behind, alone = [], []
    for t in handed:
        own = [
            p for p in carrying if abs(p[1] - t["acked"]) < 0.0005 and p[0] >= t["queued"] - 1e-4
        ]
        if not own:
            continue
        request = own[0]
        wait = (request[0] - t["queued"]) * 1000
        (behind if wait > 0.3 else alone).append(
            (wait, (request[1] - request[0]) * 1000, request[2])
        )
    for name, group in (("sent at once", alone), ("waited to be sent", behind)):
        if group:
            print(
                f"  {len(group)} {name}: queued -> sent p50 {statistics.median(g[0] for g in group):.2f} ms,"
                f" request p50 {statistics.median(g[1] for g in group):.2f} ms,"
                f" partitions p50 {statistics.median(g[2] for g in group)}"
            )


def _fetch_report(fetches: list[tuple[float, float]], whole: list[dict[str, float]]) -> None:
    """Was a fetch waiting at the broker when each transition was acknowledged?"""
    held = [(b - a) * 1000 for a, b in fetches]
    idle = [(c - b) * 1000 for (_, b), (c, _) in itertools.pairwise(fetches)]
    print(
        f"  fetches: {len(fetches)}, held p50 {statistics.median(held):.2f} ms,"
        f" none in flight between two p50 {statistics.median(idle):.2f} ms"
        f" mean {statistics.mean(idle):.2f}"
    )
    late, waiting = [], []
    for t in whole:
        bringing = [f for f in fetches if abs(f[1] - t["arrived"]) < 0.0005]
        if not bringing:
            continue
        sent, _ = bringing[0]
        if sent > t["acked"]:
            late.append((sent - t["acked"]) * 1000)
        else:
            waiting.append((t["arrived"] - t["acked"]) * 1000)
    if late:
        print(
            f"  {len(late)} sent after the ack: ack -> fetch sent p50 {statistics.median(late):.2f} ms"
        )
    if waiting:
        print(
            f"  {len(waiting)} in flight at the ack: ack -> arrived p50 {statistics.median(waiting):.2f} ms"
        )


if os.environ.get("BRAIDFLOW_CHAIN_PROBE") and __name__ != "__main__":
    install(os.environ["BRAIDFLOW_CHAIN_PROBE"])

if __name__ == "__main__":
    report(sys.argv[1])
