"""The worker's event loop: uvloop unless the settings say not (runtime/event_loop.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest
import uvloop

from braidflow.config import Settings
from braidflow.runtime.event_loop import use_event_loop


@pytest.fixture
def policy_kept() -> Iterator[None]:
    before = asyncio.get_event_loop_policy()
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(before)


def _loop_made() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.close()
    return loop


def test_a_worker_loop_is_uvloops_by_default(policy_kept: None) -> None:
    assert use_event_loop(Settings()) == "uvloop"
    assert isinstance(_loop_made(), uvloop.Loop)


def test_no_uvloop_leaves_asyncios_own_loop(policy_kept: None) -> None:
    asyncio.set_event_loop_policy(None)
    assert use_event_loop(replace(Settings(), uvloop=False)) == "asyncio"
    assert not isinstance(_loop_made(), uvloop.Loop)
