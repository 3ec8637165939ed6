"""The garbage collector's settings for a worker that is ready."""

from __future__ import annotations

import gc

# The first generation's threshold and how many of each generation's collections before the
# next: CPython's (700, 10, 10) made a worker's full collections 10-13% of its CPU under load
# (23 of about 126 ms each over a 3,000-execution fan-out), each scanning every object the
# worker holds. Almost all of a step's objects die by reference counting; cycles are rare.
THRESHOLDS = (10_000, 20, 20)


def settle_collector() -> None:
    """Freeze what start-up made and collect less often from now on.

    Modules, the catalog, Faust's and aiokafka's machinery live as long as the worker: frozen,
    no collection scans them again (docs/performance-history.md, "Parked executions, round
    four")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
