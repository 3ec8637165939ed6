"""The worker's event loop: uvloop's where it is installed, else asyncio's own.

The worker is one Python process whose event loop carries every record: the loop's own
work (polling sockets, timers, reading and writing transports) was about a fifth of a
loaded worker's busy samples under asyncio's pure-Python loop. uvloop does it in C; the
worker's CPU per transition fell by 5 - 15% (docs/performance.md#the-event-loop).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging

log = logging.getLogger(__name__)

EVENT_LOOPS = ("uvloop", "asyncio")
"""What `Settings.event_loop` may name."""


def check(name: str) -> None:
    """ValueError, naming the setting, unless `name` is one of `EVENT_LOOPS`."""
    if name not in EVENT_LOOPS:
        raise ValueError(
            f"BRAIDFLOW_EVENT_LOOP: {name!r} is not an event loop braidflow runs on"
            f" (one of {', '.join(EVENT_LOOPS)})"
        )


def use(name: str) -> str:
    """Make the loops made from now on `name`'s; return the one that will run.

    uvloop is a dependency wherever it builds (not on Windows): where it is missing the
    worker runs on asyncio's loop and says so, rather than not starting.
    """
    check(name)
    if name == "uvloop":
        if importlib.util.find_spec("uvloop") is None:
            log.warning("uvloop is not installed: the worker runs on asyncio's event loop")
        else:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return "uvloop"
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    return "asyncio"
