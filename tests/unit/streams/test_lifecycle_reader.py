"""The stats' lifecycle reader tells the worker when the broker refuses its group for good
(the worker then stops with one line naming the setting), and only then."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError

from braidflow.config import Settings
from braidflow.streams.group_errors import GROUP_AUTHORIZATION_FAILED
from braidflow.streams.lifecycle_reader import LifecycleReader


async def observe(messages: Sequence[Any]) -> None:
    """Nothing is read in these tests."""


def test_a_refused_group_is_told_and_a_passing_error_is_not() -> None:
    reader = LifecycleReader(Settings(prefix="bf"), observe)
    told: list[tuple[str, int]] = []
    reader.on_refusal = lambda group, code: told.append((group, code))
    reader._failed(KafkaError(KafkaError._PARTITION_EOF))
    reader._failed(KafkaError(KafkaError._TRANSPORT))
    assert told == []
    reader._failed(KafkaError(GROUP_AUTHORIZATION_FAILED))
    assert told == [("bf-stats", GROUP_AUTHORIZATION_FAILED)]
