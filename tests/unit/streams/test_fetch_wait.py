"""How long a consumer's fetches wait on the embedded broker (`streams/fetch_wait.py`)."""

from __future__ import annotations

from braidflow.streams.fetch_wait import EASE_AFTER, MAX_WAIT_MS, FetchWait


def test_a_fetch_at_the_end_keeps_the_consumers_own_wait_whatever_was_missed() -> None:
    wait = FetchWait()
    wait.missed(5)
    wait.missed(7)
    assert wait.for_fetch(5, behind=False) == 5


def test_a_fetch_for_records_known_to_be_there_waits_longer_after_each_miss() -> None:
    wait = FetchWait()
    assert wait.for_fetch(5, behind=True) == 5
    waits = []
    for _ in range(6):
        waited = wait.for_fetch(5, behind=True)
        wait.missed(waited)
        waits.append(wait.for_fetch(5, behind=True))
    assert waits == [7, 10, 15, 22, 33, 49]


def test_the_wait_grows_to_a_limit() -> None:
    wait = FetchWait()
    for _ in range(40):
        wait.missed(wait.for_fetch(5, behind=True))
    assert wait.for_fetch(5, behind=True) == MAX_WAIT_MS


def test_answers_with_records_ease_the_wait_back_to_the_consumers_own() -> None:
    wait = FetchWait()
    wait.missed(100)
    assert wait.for_fetch(5, behind=True) == 150
    for _ in range(EASE_AFTER - 1):
        wait.answered()
    assert wait.for_fetch(5, behind=True) == 150
    wait.answered()
    assert wait.for_fetch(5, behind=True) == 135
    for _ in range(EASE_AFTER * 100):
        wait.answered()
    assert wait.for_fetch(5, behind=True) == 5


def test_a_miss_starts_the_easing_count_again() -> None:
    wait = FetchWait()
    wait.missed(100)
    for _ in range(EASE_AFTER - 1):
        wait.answered()
    wait.missed(150)
    for _ in range(EASE_AFTER - 1):
        wait.answered()
    assert wait.for_fetch(5, behind=True) == 225


def test_a_longer_own_wait_a_recovery_sets_is_kept() -> None:
    wait = FetchWait()
    wait.missed(10)
    assert wait.for_fetch(500, behind=True) == 500
    assert wait.for_fetch(500, behind=False) == 500
