import gc
from collections.abc import Iterator

import pytest

from braidflow.runtime.collector import THRESHOLDS, settle_collector


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_ready_worker_freezes_what_start_up_made_and_collects_less_often(
    collector: None,
) -> None:
    kept = [object() for _ in range(10)]
    settle_collector()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == THRESHOLDS
    assert THRESHOLDS[0] > 700
