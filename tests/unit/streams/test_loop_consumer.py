"""Faust's aiokafka consumer runs on the worker's event loop: no thread of its own, no hand-off
of each batch across event loops."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from braidflow.config import Settings
from braidflow.streams.app import create_app


def test_the_consumer_lives_on_the_apps_loop(tmp_path: Path) -> None:
    async def scenario() -> None:
        parts = create_app(Settings(data_dir=tmp_path))
        consumer = parts.app.consumer._thread
        assert consumer.thread_loop is asyncio.get_running_loop()
        ran_on = await consumer.call_thread(threading.get_ident)
        assert ran_on == threading.get_ident()

    asyncio.run(scenario())


def test_a_call_to_the_consumer_awaits_a_coroutine_in_place(tmp_path: Path) -> None:
    async def scenario() -> None:
        parts = create_app(Settings(data_dir=tmp_path))
        consumer = parts.app.consumer._thread

        async def committed(offset: int) -> int:
            await asyncio.sleep(0)
            return offset + 1

        # A generous deadline: a call handed to a thread that is not running never returns.
        assert await asyncio.wait_for(consumer.call_thread(committed, 41), 10) == 42

    asyncio.run(scenario())


def test_faust_consumer_fetches_with_the_agents_wait_not_the_transitions(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings(data_dir=tmp_path, fetch_max_wait_ms=5, agent_fetch_wait_ms=80)
        app = create_app(settings).app
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        assert consumer._fetch_max_wait_ms == 80

    asyncio.run(scenario())
