"""No-op task handlers for the runtime bench: the cost measured is braidflow's, not the task's."""

from __future__ import annotations

from typing import Any

import braidflow


@braidflow.task("bench.noop")
async def noop(input: Any) -> dict[str, Any]:
    return {}
