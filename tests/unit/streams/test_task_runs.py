"""The executor's task runs, by request: found again by the same bytes, and what is kept per
run does not grow with the request's input."""

from __future__ import annotations

import asyncio
import tracemalloc

from braidflow.streams.task_runs import TaskRuns


async def _nothing() -> None:
    return None


def test_a_request_finds_its_run_by_its_bytes_and_another_finds_none() -> None:
    async def scenario() -> None:
        runs = TaskRuns()
        run = asyncio.ensure_future(_nothing())
        runs.add(b"request one", run)
        assert runs.get(b"request one") is run
        assert runs.get(b"request two") is None and runs.get(None) is None
        await run

    asyncio.run(scenario())


def test_the_oldest_runs_are_forgotten_past_the_capacity() -> None:
    async def scenario() -> None:
        runs = TaskRuns(capacity=2)
        tasks = [asyncio.ensure_future(_nothing()) for _ in range(3)]
        for n, task in enumerate(tasks):
            runs.add(f"request {n}".encode(), task)
        assert [runs.get(f"request {n}".encode()) for n in range(3)] == [None, *tasks[1:]]
        await asyncio.gather(*tasks)

    asyncio.run(scenario())


def test_large_requests_are_not_kept_once_their_runs_are_remembered() -> None:
    async def scenario() -> int:
        runs = TaskRuns()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(50):
                value = bytes([n]) * 200_000  # 10 MB of requests in all
                task = asyncio.ensure_future(_nothing())
                runs.add(value, task)
                await task
                del value
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    assert asyncio.run(scenario()) < 1_000_000
