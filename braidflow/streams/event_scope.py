"""Table writes on behalf of one event of a batch (`stream.take_events`).

Faust picks a table row's partition (its RocksDB store and changelog partition) from the
event being processed, a context variable its stream iteration sets. An agent that takes
events in batches processes them outside that iteration, so it names the event itself.
"""

from __future__ import annotations

import weakref
from contextvars import Token
from typing import Any

from faust.streams import _current_event
from faust.types import EventT


class acting_for:
    """Reads and writes of tables within act for `event` (its partition).

    A class (named as contextlib's `suppress` is) rather than a `contextmanager` generator:
    the orchestrator enters one for each group of records it handles, and a generator's
    frames cost twice as much.
    """

    __slots__ = ("_event", "_token")

    def __init__(self, event: EventT) -> None:
        self._event = event

    def __enter__(self) -> None:
        self._token: Token[Any] = _current_event.set(weakref.ref(self._event))

    def __exit__(self, *exc_info: object) -> None:
        _current_event.reset(self._token)
