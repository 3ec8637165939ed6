"""An asyncio loop in a thread, for the HTTP servers a test runs beside its workers.

The tests talk to workers synchronously; the servers the workers call (the demo
services, a test's own aiohttp app) must keep answering meanwhile, so they live
on a loop of their own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class BackgroundLoop:
    """A running event loop in a daemon thread; `run` a coroutine on it and get its result."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="background-loop", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def serve(self, app: web.Application, host: str, port: int) -> web.AppRunner:
        """Serve `app` on host:port until `runner.cleanup()` is `run` here."""

        async def start() -> web.AppRunner:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            return runner

        return self.run(start())

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
