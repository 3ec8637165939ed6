"""On the embedded broker, a fetch for records known to be there waits as long as Tansu needs.

Tansu 0.6 lists every batch of a partition on each fetch, within the fetch's wait, and
answers without records when the listing does not end in time: at dev mode's 5 ms wait,
past some 7,000 batches in a partition (fewer under load). A long-lived dev broker gets
there on every topic, and a consumer at the end of such a partition then never took
another record from it: the transitions, the tasks, the read models.

Every answer carries the partition's high watermark. A consumer whose last answer showed
records past its position (a record came during the wait, or it is behind) asks for them
with a wait that grows by half each time such a fetch comes back without them, up to
`MAX_WAIT_MS`: Tansu answers as soon as its listing finds them, so the longer wait costs
only the listing. It comes down again by a tenth every `EASE_AFTER` answers with records,
to stay near what the listing takes (a miss now and then finds it again). A fetch at the
end, waiting for new records, keeps the consumer's own wait: Tansu holds a fetch with
nothing for its whole wait, and a record that comes meanwhile waits it out.

Every aiokafka consumer of the process (Faust's, the executor's, the read models') does
this once `adapt_fetch_waits` ran; the worker runs it on the embedded broker only.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import Fetcher

log = logging.getLogger(__name__)

# Tansu lists a batch in about a microsecond, slower under load and in larger partitions:
# room for some 100,000s (as `changelog_ends.RECOVERY_FETCH_WAIT_MS`).
MAX_WAIT_MS = 500
# Answers with records per easing of the wait (by a tenth).
EASE_AFTER = 10


class FetchWait:
    """How long a consumer's fetches wait: its own wait, or longer for records known to be
    past its position, grown by the fetches that missed them and eased by the others."""

    def __init__(self) -> None:
        # For records known to be there; 0 until a fetch missed them.
        self.behind_ms = 0
        self._answered = 0

    def for_fetch(self, own_ms: int, behind: bool) -> int:
        """The wait of a fetch; `behind`: records are known to be past the position."""
        return max(own_ms, self.behind_ms) if behind else own_ms

    def missed(self, waited_ms: int) -> None:
        """A fetch that waited `waited_ms` for records known to be there came back without."""
        self.behind_ms = min(max(waited_ms * 3 // 2, waited_ms + 1), MAX_WAIT_MS)
        self._answered = 0

    def answered(self) -> None:
        """A fetch for records known to be there brought records."""
        self._answered += 1
        if self._answered >= EASE_AFTER:
            self._answered = 0
            self.behind_ms = self.behind_ms * 9 // 10


def _behind(assignment: Any, request: Any) -> list[tuple[TopicPartition, int]]:
    """The partitions `request` fetches whose last answer showed records past the offset
    asked for, with that offset."""
    behind = []
    for topic, partitions in request.topics:
        for partition, offset, _ in partitions:
            tp = TopicPartition(topic, partition)
            state = assignment.state_value(tp)
            if state is not None and state.highwater is not None and state.highwater > offset:
                behind.append((tp, offset))
    return behind


def _missed(fetcher: Any, assignment: Any, behind: list[tuple[TopicPartition, int]]) -> bool:
    """Whether the answer left out records of a partition that were there when asked for
    (the consumer's position unchanged: not discarded for a seek meanwhile)."""
    for tp, offset in behind:
        if tp in fetcher._records:
            continue
        state = assignment.state_value(tp)
        if state is not None and state.has_valid_position and state.position == offset:
            return True
    return False


def adapt_fetch_waits() -> None:
    """Make every aiokafka consumer's fetches for records known to be there wait as long as
    the broker needs to find them (idempotent)."""
    if getattr(Fetcher, "_braidflow_fetch_wait", False):
        return
    proc = Fetcher._proc_fetch_request

    async def proc_fetch_request(self: Any, assignment: Any, node_id: int, request: Any) -> bool:
        wait: FetchWait | None = getattr(self, "_braidflow_wait", None)
        if wait is None:
            wait = self._braidflow_wait = FetchWait()
        behind = _behind(assignment, request)
        # Built with the consumer's own wait (`_create_fetch_requests`), not yet sent.
        waited = request._max_wait_ms = wait.for_fetch(self._fetch_max_wait_ms, bool(behind))
        woken: bool = await proc(self, assignment, node_id, request)
        if not behind or not assignment.active:
            return woken
        if _missed(self, assignment, behind):
            wait.missed(waited)
            log.info(
                "%s: a fetch missed records in %d ms, the next waits up to %d ms",
                self._client._client_id,
                waited,
                wait.behind_ms,
            )
        else:
            wait.answered()
        return woken

    Fetcher._proc_fetch_request = proc_fetch_request
    Fetcher._braidflow_fetch_wait = True
