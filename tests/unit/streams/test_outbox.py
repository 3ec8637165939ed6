"""The outbox sends each entry to its topic, and makes sure an events topic exists first."""

from __future__ import annotations

import asyncio
from typing import Any

from braidflow.config import Topics
from braidflow.schemas import OutboxEntry
from braidflow.streams.outbox import Outbox


async def test_a_published_event_makes_sure_of_its_topic_and_other_records_do_not() -> None:
    sent: list[tuple[str, bytes]] = []
    ensured: list[str] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> asyncio.Future[int]:
        sent.append((topic, key))
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(0)
        return done

    async def ensure(topic: str) -> None:
        ensured.append(topic)

    outbox = Outbox(Topics("bf"), send, ensure)
    entries = [
        OutboxEntry("task", "ex:a:1", b"task"),
        OutboxEntry("publish", "ex/tell", b"{}", "events.ticket", b"subject"),
    ]
    await outbox.send(b"ex", entries)
    assert sent == [("bf.tasks", b"ex"), ("events.ticket", b"subject")]
    assert ensured == ["events.ticket"]
