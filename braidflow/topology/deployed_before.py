"""Whether an event is new enough to start a workflow, or to be waited for. Pure.

An event triggers a workflow only when the version carrying that trigger was
deployed before the event happened: a new deployment is never started by the
history its events topic already holds (replaying history is `backfill`, a
deliberate act). "The version carrying that trigger" is the earliest of the
latest run of versions that all carry an equal trigger: redeploying a workflow
with its trigger unchanged does not drop the events published in between.

Times are epoch milliseconds taken by the caller; `tolerance_ms` is how far an
event's clock may lag the deployment's and the event still count as after it.
"""

from __future__ import annotations

from collections.abc import Sequence

from braidflow.topology.model import EventTrigger, Trigger


def carried_since(versions: Sequence[Sequence[Trigger]], trigger: EventTrigger) -> int | None:
    """Index in `versions` (each version's triggers, oldest first, the latest last) of the
    version from which on every later one carries `trigger`; None when the latest does not."""
    since = None
    for index in range(len(versions) - 1, -1, -1):
        if trigger not in versions[index]:
            break
        since = index
    return since


def happened_after(happened_at: int | None, deployed_at: int, tolerance_ms: int) -> bool:
    """Whether an event that happened at `happened_at` counts as after a deployment at
    `deployed_at`. An event with no known time (a record without a timestamp) counts."""
    return happened_at is None or happened_at >= deployed_at - tolerance_ms


def waited_for(
    happened_at: int | None, first_waiting_deploy: int, keep_ms: int, tolerance_ms: int
) -> bool:
    """Whether a wait_event could still see an event: waits begin after the first version
    that waits for the type was deployed, and see events kept from `keep_ms` before."""
    return happened_after(happened_at, first_waiting_deploy - keep_ms, tolerance_ms)
