"""Task handlers of the tests of tasks handed over in their own worker (streams/executor.py,
`Executor.run_here`). Loaded with `--handlers`, beside task_handlers.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

import braidflow


@braidflow.task("test.kill_once")
async def kill_once(input: dict[str, Any], context: braidflow.TaskContext) -> dict[str, int]:
    """Notes each run in the file `runs` (this process, how many tasks it had been handed
    over so far, the execution); the first run then kills its own worker with SIGKILL, as a
    crash."""
    runs = Path(input["runs"])
    earlier = runs.read_text().splitlines() if runs.exists() else []
    handed_over = REGISTRY.get_sample_value("braidflow_tasks_handed_over_total") or 0
    with runs.open("a") as notes:
        notes.write(f"{os.getpid()} {handed_over:.0f} {context.execution_id}\n")
    if not earlier:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"runs": len(earlier) + 1}
