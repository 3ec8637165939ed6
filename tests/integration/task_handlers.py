"""Task handlers the integration tests deploy workflows against.

Loaded by the worker subprocesses with `--handlers tests/integration/task_handlers.py`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import braidflow


@braidflow.task("test.echo")
async def echo(input: Any) -> Any:
    """Returns its input."""
    return input


@braidflow.task("test.boom")
async def boom(input: Any) -> Any:
    """Always fails the node with a ValueError naming its input."""
    raise ValueError(f"boom: {input}")


@braidflow.task("test.slow")
async def slow(input: dict[str, Any], context: braidflow.TaskContext) -> dict[str, Any]:
    """Takes `seconds` (0.3 by default), then answers with its `value` and where it ran."""
    await asyncio.sleep(float(input.get("seconds", 0.3)))
    return {"value": input["value"], "node": context.node_id}
