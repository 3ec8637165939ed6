"""The runtime clock follows the offset file tests use to move time forward."""

from __future__ import annotations

import time
from pathlib import Path

from braidflow.streams.clock import RuntimeClock
from braidflow.streams.publisher import epoch_ms

DAY_MS = 86_400_000


def test_without_a_file_it_is_the_wall_clock() -> None:
    before = epoch_ms()
    assert before <= RuntimeClock()() <= epoch_ms()


def test_the_offset_in_the_file_moves_it_and_a_later_write_moves_it_again(tmp_path: Path) -> None:
    offset = tmp_path / "offset"
    clock = RuntimeClock(offset)
    assert abs(clock() - epoch_ms()) < 1_000  # no file yet: no offset
    offset.write_text(str(DAY_MS))
    time.sleep(0.06)
    assert clock() - epoch_ms() >= DAY_MS - 1_000
    offset.write_text(str(2 * DAY_MS))
    time.sleep(0.06)
    assert clock() - epoch_ms() >= 2 * DAY_MS - 1_000


def test_an_unreadable_offset_keeps_the_last_good_one(tmp_path: Path) -> None:
    offset = tmp_path / "offset"
    offset.write_text(str(DAY_MS))
    clock = RuntimeClock(offset)
    assert clock() - epoch_ms() >= DAY_MS - 1_000
    offset.write_text("tomorrow")
    time.sleep(0.06)
    assert clock() - epoch_ms() >= DAY_MS - 1_000
