"""Schedule triggers: each cron slot starts its workflow once, across workers and restarts.

Faust's crontab is not durable, so slots are plain arithmetic plus the
executions table. A slot's execution id is derived from (workflow, trigger,
slot time); the worker that owns the transitions partition of that id fires
it, and only when the executions table holds no such execution. Two workers
that both believe they own it during a rebalance send the same id, and the
engine ignores the second start. A slot missed while no worker ran fires when a
worker comes back within `schedule_grace_s`; older missed slots are logged as
skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Container, Mapping
from typing import Any

from aiokafka.partitioner import murmur2

from braidflow.config import Settings
from braidflow.engine import ids
from braidflow.engine.state import iso_time
from braidflow.streams.catalog import Catalog
from braidflow.tenants import catalog_key
from braidflow.topology.model import ScheduleTrigger
from braidflow.topology.subscriptions import schedule_slots

log = logging.getLogger(__name__)

_INTERVAL_S = 0.25
_SLOT_LIMIT = 1_000

StartFor = Callable[[str, Mapping[str, Any]], Awaitable[tuple[str, Awaitable[Any]] | None]]
"""Start a workflow for an event: (execution id, acknowledgement), as the router does it."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as Faust and Java use) gives a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def slot_event(workflow_id: str, trigger_index: int, slot_ms: int) -> dict[str, Any]:
    """The event a schedule slot starts its workflow with (`event` in its expressions)."""
    return {
        "specversion": "1.0",
        "id": ids.schedule_slot_id(workflow_id, trigger_index, slot_ms),
        "source": f"/braidflow/schedules/{workflow_id}",
        "type": "braidflow.schedule",
        "subject": workflow_id,
        "time": iso_time(slot_ms),
        "data": {"slot": iso_time(slot_ms)},
    }


class Scheduler:
    """Fires the schedule slots whose executions land in this worker's partitions."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        start_for: StartFor,
        execution_id_for: Callable[[Mapping[str, Any], str, str], str],
        owned: Callable[[], Container[int]],
        executions: Container[bytes],
        clock: Callable[[], int],
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._start_for = start_for
        self._execution_id_for = execution_id_for
        self._owned = owned
        self._executions = executions
        self._clock = clock
        # While partitions move (and tables restore) neither ownership nor the table can be
        # trusted; the first look waits for a settled assignment.
        self._paused = paused
        self._window: dict[tuple[str, int, int], list[int]] = {}
        self._computed_until: dict[tuple[str, int, int], int] = {}
        self._sent: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                # With no schedule deployed nothing is owed: ownership is not even asked
                # (the assignor's actives, twice a tick, cost a busy worker a few percent).
                if self._schedules() and not self._paused():
                    await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("firing schedules failed; retrying")
            await asyncio.sleep(_INTERVAL_S)

    def _schedules(self) -> list[tuple[str, int, ScheduleTrigger]]:
        """Every deployed schedule trigger as (catalog key, trigger index, trigger)."""
        return [
            (catalog_key(tenant, workflow_id), index, trigger)
            for tenant in self._catalog.tenants()
            for workflow_id, index, trigger in self._catalog.subscriptions(tenant).schedules()
        ]

    async def tick(self) -> None:
        """Fire every slot within the grace period that is owned here and not yet started."""
        now = self._clock()
        grace_ms = int(self._settings.schedule_grace_s * 1000)
        owned = self._owned()
        acknowledgements = []
        for workflow_id, index, trigger in self._schedules():
            # `workflow_id` is a catalog key: a schedule starts its own tenant's workflow.
            deployment = self._catalog.latest(workflow_id)
            if deployment is None:
                continue
            # Per deployed version: a redeploy starts its schedule afresh from its deploy time.
            cursor = (workflow_id, index, deployment.version)
            first = cursor not in self._window
            since = max(deployment.deployed_at, now - (2 if first else 1) * grace_ms)
            window = [slot for slot in self._window.get(cursor, []) if now - slot <= grace_ms]
            computed_until = self._computed_until.get(cursor, since)
            while slots := schedule_slots(trigger, computed_until, now, _SLOT_LIMIT):
                window.extend(slots)
                computed_until = slots[-1]
            self._computed_until[cursor] = now
            # Slots stay in the window for the whole grace period, not one tick: a partition
            # that moves here from a worker that died fires what that worker did not.
            self._window[cursor] = [slot for slot in window if now - slot <= grace_ms]
            for slot in window:
                event = slot_event(deployment.workflow_id, index, slot)
                execution_id = self._execution_id_for(
                    event, deployment.workflow_id, deployment.tenant
                )
                key = execution_id.encode()
                if partition_of(key, self._settings.partitions) not in owned:
                    continue
                if key in self._executions or execution_id in self._sent:
                    continue
                if now - slot > grace_ms:
                    # Only on a worker's first look, for slots missed while none ran.
                    log.warning(
                        "schedule %s#%d: slot %s was missed by more than the grace period"
                        " (%d s); skipped",
                        workflow_id,
                        index,
                        iso_time(slot),
                        grace_ms // 1000,
                    )
                    continue
                started = await self._start_for(workflow_id, event)
                if started is not None:
                    self._sent[execution_id] = now
                    acknowledgements.append(started[1])
        await asyncio.gather(*acknowledgements)
        # Sent starts are in the table within moments; the memory only bridges that gap.
        self._sent = {e: at for e, at in self._sent.items() if now - at < 60_000}
