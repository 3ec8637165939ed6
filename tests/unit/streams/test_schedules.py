"""The scheduler's loop (streams/schedules.py) with plain data: a catalog, no Kafka."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from braidflow.config import Settings
from braidflow.engine.ids import execution_id_for
from braidflow.streams.catalog import Catalog
from braidflow.streams.schedules import Scheduler

T0 = 1_700_000_000_000


async def _never_produce(*_: Any) -> None:
    raise AssertionError("nothing is written")


async def _never_start(*_: Any) -> None:
    raise AssertionError("nothing is started")


async def _asked_while_running(catalog: Catalog) -> list[str]:
    """What the scheduler asked of the worker in its first looks."""
    asked: list[str] = []

    def owned() -> set[int]:
        asked.append("owned")
        return set()

    def paused() -> bool:
        asked.append("paused")
        return False

    scheduler = Scheduler(
        Settings(), catalog, _never_start, execution_id_for, owned, set(), lambda: T0, paused
    )
    await scheduler.start()
    await asyncio.sleep(0.05)
    await scheduler.stop()
    return asked


async def test_with_no_schedule_deployed_the_scheduler_asks_nothing_of_the_worker() -> None:
    assert await _asked_while_running(Catalog(Settings(), _never_produce)) == []


async def test_with_a_schedule_deployed_the_scheduler_asks_which_partitions_are_here() -> None:
    catalog = Catalog(Settings(), _never_produce)
    text = (
        "id: report\ntriggers:\n  - schedule: {cron: '0 0 1 1 *'}\n"
        "nodes:\n  - {id: done, type: end}\nedges: []\n"
    )
    value = {"id": "report", "text": text, "deployed_at": T0, "proposal": "p1"}
    await catalog._apply(json.dumps(value).encode(), T0)
    assert await _asked_while_running(catalog) == ["paused", "owned"]
