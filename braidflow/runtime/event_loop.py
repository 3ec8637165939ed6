"""The worker's event loop: uvloop where it is installed (a dependency off Windows).

Every hop of an execution waits on the worker's one event loop: a produce request is
written, its answer read and its future resolved there, between the steps, the executor,
the read models and every consumer's fetches. On asyncio's own loop each of those
wake-ups costs a few loop turns of Python; uvloop makes them in C. The 3-node chain
(`bench/runtime_bench.py --chain-only`) took about a quarter less time and worker CPU
(docs/performance.md, "The worker's event loop on uvloop").
"""

from __future__ import annotations

import asyncio

from braidflow.config import Settings


def use_event_loop(settings: Settings) -> str:
    """Make the loops this process creates from now on uvloop's, unless `settings` say not
    or it is not installed; the name of the loop chosen. Call it before anything makes a
    loop: the worker and dev commands do, first."""
    if not settings.uvloop:
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
