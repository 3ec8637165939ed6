"""Task handlers the integration tests deploy workflows against.

Loaded by the worker subprocesses with `--handlers tests/integration/task_handlers.py`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opentelemetry import trace

import braidflow

handler_log = logging.getLogger("tests.task_handlers")


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


@braidflow.task("test.flaky")
async def flaky(input: dict[str, Any], context: braidflow.TaskContext) -> dict[str, Any]:
    """Fails with a ConnectionError until attempt `succeed_at`, then answers with the attempt."""
    if context.attempt < int(input.get("succeed_at", 3)):
        raise ConnectionError(f"attempt {context.attempt} of {context.node_id} failed")
    return {"attempt": context.attempt}


@braidflow.task("test.strict")
async def strict(input: dict[str, Any]) -> dict[str, Any]:
    """Fails with a ValueError unless its input says `fixed: true` (a patched redrive)."""
    if not input.get("fixed"):
        raise ValueError(f"input not fixed: {input}")
    return {"fixed": True}


@braidflow.task("test.range")
async def numbers(input: dict[str, Any]) -> list[int]:
    """The numbers 0 to `n` - 1: a long list for a foreach to map over."""
    return list(range(int(input["n"])))


@braidflow.task("test.records")
async def records(input: dict[str, Any]) -> list[dict[str, Any]]:
    """`n` records of about `width` bytes of JSON each, numbered from 0 in `n`."""
    pad = "x" * max(int(input.get("width", 40)) - 20, 0)
    return [{"n": i, "pad": pad} for i in range(int(input["n"]))]


@braidflow.task("test.noop")
async def noop(input: Any) -> None:
    """Does nothing and returns nothing."""


@braidflow.task("test.bulky")
async def bulky(input: dict[str, Any]) -> dict[str, str]:
    """An output of about `bytes` bytes."""
    return {"blob": "x" * int(input["bytes"])}


@braidflow.task("test.secret_reader")
async def secret_reader(input: Any, context: braidflow.TaskContext) -> dict[str, Any]:
    """Reads the secret HELPDESK_TOKEN and returns its length, and the value itself (which the
    executor must take out of the output)."""
    token = context.secrets["HELPDESK_TOKEN"]
    return {"length": len(token), "careless": f"token={token}"}


@braidflow.task("test.secret_strict")
def secret_strict(input: dict[str, Any], context: braidflow.TaskContext) -> dict[str, Any]:
    """Fails with an error quoting the secret API_TOKEN unless its input says `fixed: true`."""
    token = context.secrets["API_TOKEN"]
    if not input.get("fixed"):
        raise PermissionError(f"the helpdesk refused {token}")
    return {"fixed": True}


@braidflow.task("test.traceparent")
async def traceparent(input: Any, context: braidflow.TaskContext) -> dict[str, Any]:
    """Takes `seconds` (0 by default), then answers with the traceparent its context gives."""
    await asyncio.sleep(float((input or {}).get("seconds", 0)))
    return {"traceparent": context.traceparent}


def _current_span() -> dict[str, str]:
    span = trace.get_current_span().get_span_context()
    return {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x")}


@braidflow.task("test.current_span")
def current_span(input: Any) -> dict[str, str]:
    """OpenTelemetry's current span, as a sync handler (run in a thread) sees it."""
    return _current_span()


@braidflow.task("test.current_span_async")
async def current_span_async(input: Any) -> dict[str, str]:
    """OpenTelemetry's current span, as an async handler sees it."""
    return _current_span()


@braidflow.task("test.chatty")
async def chatty(input: dict[str, Any], context: braidflow.TaskContext) -> dict[str, Any]:
    """Logs through `context.log` and the standard `logging`, a line quoting the secret
    `helpdesk` (the shared worker's) among them, then `lines` more lines; fails with a
    ConnectionError until attempt `succeed_at` (1 by default)."""
    token = context.secrets["helpdesk"]
    context.log(f"attempt {context.attempt} begins")
    handler_log.warning("calling the helpdesk with %s", token)
    for n in range(int(input.get("lines", 0))):
        context.log(f"line {n}", level="debug")
    if context.attempt < int(input.get("succeed_at", 1)):
        raise ConnectionError(f"attempt {context.attempt} refused")
    return {"attempt": context.attempt}


@braidflow.task("test.chatty_sync")
def chatty_sync(input: Any, context: braidflow.TaskContext) -> dict[str, bool]:
    """A plain `def` handler (run in a thread) logging both ways."""
    context.log("in a thread", level="warning")
    handler_log.info("standard logging from the thread of %s", context.node_id)
    return {"ok": True}
