"""The execution index on SQLite and on PostgreSQL: lifecycle events stored per second, and
how long a search by an input field takes, with 10,000+ executions.

    .venv/bin/python bench/read_model_bench.py [--executions 10000]

PostgreSQL is the test suite's embedded server (tests/integration/postgres_server.py).
Events go in as the projection stores a fetched batch: `apply_many` with the batch's
positions, 500 events a batch. Prints the figures and the load average beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "integration"))

from postgres_server import PostgresServer

from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.connectors.execution_search import ExecutionSearch, InputMatch
from braidflow.connectors.read_model_db import read_model_location
from braidflow.engine.messages import LifecycleEvent

NOW = 1_700_000_000_000
WORKFLOWS = 2
BATCH = 500
QUERIES = 20


def events(executions: int) -> Iterator[LifecycleEvent]:
    """A start and an end per execution, spread over the workflows."""
    for n in range(executions):
        execution_id, workflow_id = f"e{n:06d}", f"orders-{n % WORKFLOWS}"
        data = {
            "input": {"customer": {"id": f"c{n}"}, "amount": n % 100, "region": f"r{n % 7}"},
            "event": None,
        }
        yield LifecycleEvent(
            f"{execution_id}/s", "workflow.started", execution_id, workflow_id, 1, NOW + n,
            data=data,
        )  # fmt: skip
        end = "workflow.failed" if n % 10 == 0 else "workflow.completed"
        yield LifecycleEvent(f"{execution_id}/e", end, execution_id, workflow_id, 1, NOW + n + 5)


def store(index: ExecutionIndex, executions: int) -> float:
    """Events stored per second."""
    all_events = list(events(executions))
    started = time.perf_counter()
    for at in range(0, len(all_events), BATCH):
        batch = all_events[at : at + BATCH]
        index.apply_many(batch, {TopicPartition("lifecycle", 0): at + len(batch)})
    return len(all_events) / (time.perf_counter() - started)


def median_ms(call: Callable[[], Any]) -> tuple[float, Any]:
    call()
    times, found = [], None
    for _ in range(QUERIES):
        started = time.perf_counter()
        found = call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), found


def searches(index: ExecutionIndex, executions: int) -> list[tuple[str, float, int]]:
    rare = ExecutionSearch(inputs=(InputMatch(("customer", "id"), f"c{executions - 21}"),))
    common = ExecutionSearch(inputs=(InputMatch(("region",), "r3"),))
    none = ExecutionSearch(inputs=(InputMatch(("customer", "id"), "nobody"),))
    workflow = f"orders-{(executions - 21) % WORKFLOWS}"
    rows = []
    for name, search in (("one match", rare), ("1 in 7", common), ("no match", none)):
        took, found = median_ms(lambda s=search: index.list(workflow, limit=50, search=s))
        rows.append((f"a workflow's, input {name}", took, len(found)))
        across = getattr(index, "search", None)
        if across is not None:
            took, found = median_ms(lambda s=search, a=across: a(limit=50, search=s))
            rows.append((f"every workflow's, input {name}", took, len(found)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=20_000)
    executions = parser.parse_args().executions
    server = PostgresServer()
    try:
        url = server.new_database()
        with tempfile.TemporaryDirectory() as directory:
            for store_name, read_model in (("sqlite", None), ("postgresql", url)):
                location = read_model_location(
                    read_model, Path(directory), f"b{uuid.uuid4().hex[:8]}", "executions-index"
                )
                index = ExecutionIndex(location)
                try:
                    rate = store(index, executions)
                    if read_model is not None:
                        # As autovacuum does soon after a load: the planner's statistics.
                        index.db.execute("ANALYZE executions")
                    print(
                        f"{store_name}: {2 * executions} lifecycle events stored at"
                        f" {rate:,.0f} events/s ({BATCH} a batch)"
                    )
                    for name, took, found in searches(index, executions):
                        print(f"{store_name}: {name}: {took:.2f} ms median ({found} found)")
                finally:
                    index.close()
    finally:
        server.stop()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores)")


if __name__ == "__main__":
    main()
