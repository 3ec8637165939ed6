"""Table writes on behalf of one event of a batch (`stream.take_events`).

Faust picks a table row's partition (its RocksDB store and changelog partition) from the
event being processed, a context variable its stream iteration sets. An agent that takes
events in batches processes them outside that iteration, so it names the event itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from faust.streams import _current_event
from faust.types import EventT


@contextmanager
def acting_for(event: EventT) -> Iterator[None]:
    """Reads and writes of tables within act for `event` (its partition)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
