"""Fixtures of the recovery tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from suite_broker import SuiteBroker
from workers import TASK_HANDLERS, WorkerProcess

SESSION_10_S = {"BRAIDFLOW_SESSION_TIMEOUT_S": "10"}


@contextmanager
def deployment(
    broker: SuiteBroker,
    prefix: str,
    tmp_path: Path,
    names: tuple[str, ...],
    env: dict[str, str] | None = None,
) -> Iterator[list[WorkerProcess]]:
    """Workers of one deployment (same prefix), each with its own state and API port, all
    ready; all stopped at the end."""
    workers = [
        WorkerProcess(broker, prefix, tmp_path / name / "data", tmp_path / f"{name}.log", env=env)
        for name in names
    ]
    try:
        for worker in workers:
            worker.start()
        # All ready means one group generation holds all (a worker is ready only once it
        # has partitions); asking each again covers its recovery in that generation.
        for worker in (*workers, *workers):
            worker.wait_ready()
        yield workers
    finally:
        # All at once: stopped one by one, each stop would rebalance the others first.
        with ThreadPoolExecutor(len(workers)) as pool:
            list(pool.map(WorkerProcess.stop, workers))


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Workers a test starts; all stopped at the end, whatever happened."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def start_worker(
    broker: SuiteBroker, prefix: str, tmp_path: Path, workers: list[WorkerProcess]
) -> Callable[..., WorkerProcess]:
    """Starts a worker of the test's deployment (its prefix: the same groups and changelogs)
    logging to tmp_path/NAME.log, not waiting for it to be ready; recorded in `workers`."""

    def start(
        name: str, data_dir: Path | None = None, handlers: Sequence[Path] = (TASK_HANDLERS,)
    ) -> WorkerProcess:
        """`data_dir` by default tmp_path/data, shared by the test's workers: each one
        carries on from the local state of the one before."""
        started = WorkerProcess(
            broker, prefix, data_dir or tmp_path / "data", tmp_path / f"{name}.log", handlers
        )
        workers.append(started)
        return started.start()

    return start


@pytest.fixture
def pair(broker: SuiteBroker, prefix: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Two workers of one deployment."""
    with deployment(broker, prefix, tmp_path, ("first", "second")) as workers:
        yield workers


@pytest.fixture
def four(broker: SuiteBroker, prefix: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Four workers of one deployment: one transitions partition each, in the suite."""
    names = ("first", "second", "third", "fourth")
    # Four on two loaded cores miss 3 s of heartbeats (at load 18 they were evicted and
    # rebalanced every 10 s, and never finished): the production session of 10 s.
    with deployment(broker, prefix, tmp_path, names, SESSION_10_S) as workers:
        yield workers
