"""Faust's consumer keeps the transitions topic assigned (its group places it with the tables'
partitions) but never reads it once a transitions reader reads it instead."""

from __future__ import annotations

import asyncio
from pathlib import Path

from faust.types import TP

from braidflow.config import Settings
from braidflow.streams.app import create_app
from braidflow.streams.orchestrator import Record
from braidflow.streams.transitions_reader import TransitionsReader, apart_topics


async def _nothing(record: Record) -> None:
    return None


async def _ready() -> None:
    return None


def test_faust_never_counts_the_transitions_partitions_active(tmp_path: Path) -> None:
    async def scenario() -> None:
        settings = Settings(data_dir=tmp_path, prefix="apart")
        parts = create_app(settings)
        TransitionsReader(parts.app, settings, _nothing, _ready)
        consumer = parts.app.consumer
        transitions = TP(settings.topics.transitions, 0)
        waits = TP(settings.topics.waits, 0)
        assert consumer._set_active_tps({transitions, waits}) == {waits}
        consumer.pause_partitions([waits])
        # A recovery's end resumes everything it paused: the transitions stay out.
        consumer.resume_partitions([transitions, waits])
        assert consumer._get_active_partitions() == {waits}
        assert apart_topics(parts.app) == {settings.topics.transitions}

    asyncio.run(scenario())
