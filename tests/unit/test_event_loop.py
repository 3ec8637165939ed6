"""The worker's event loop: uvloop by default, asyncio's when asked or when uvloop is missing."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Iterator

import pytest
import uvloop

from braidflow import event_loop
from braidflow.config import Settings, settings_from_env


@pytest.fixture(autouse=True)
def _policy_kept() -> Iterator[None]:
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


def _new_loop_type() -> type:
    loop = asyncio.new_event_loop()
    try:
        return type(loop)
    finally:
        loop.close()


def test_uvloop_is_the_default_and_makes_the_loops() -> None:
    assert Settings().event_loop == "uvloop"
    assert event_loop.use(Settings().event_loop) == "uvloop"
    assert _new_loop_type() is uvloop.Loop


def test_asyncio_when_asked() -> None:
    event_loop.use("uvloop")
    assert event_loop.use("asyncio") == "asyncio"
    assert issubclass(_new_loop_type(), asyncio.BaseEventLoop)
    assert _new_loop_type() is not uvloop.Loop


def test_without_uvloop_the_worker_runs_on_asyncio_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a)
    )
    with caplog.at_level(logging.WARNING, logger="braidflow.event_loop"):
        assert event_loop.use("uvloop") == "asyncio"
    assert "uvloop is not installed" in caplog.text
    assert _new_loop_type() is not uvloop.Loop


def test_an_unknown_loop_is_refused_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAIDFLOW_EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match=r"BRAIDFLOW_EVENT_LOOP: 'trio' .*uvloop, asyncio"):
        settings_from_env()
    monkeypatch.setenv("BRAIDFLOW_EVENT_LOOP", "asyncio")
    assert settings_from_env().event_loop == "asyncio"
