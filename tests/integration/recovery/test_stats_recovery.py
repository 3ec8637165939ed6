"""The stats survive a worker's SIGKILL: a new worker on the same state recovers the windowed
tables from their changelogs and counts every execution, those that ended before the kill
and those it finished itself (at least once: none is lost)."""

from __future__ import annotations

from collections.abc import Callable

from waiting import until
from workers import WorkerProcess

SLOW = """
id: stats-slow
nodes:
  - {id: work, type: task, params: {handler: test.slow, input: {value: 1}}}
  - {id: done, type: end}
edges:
  - {from: work, to: done}
"""
EXECUTIONS = 20


def test_the_stats_of_a_killed_worker_are_recovered_and_go_on(
    start_worker: Callable[..., WorkerProcess],
) -> None:
    first = start_worker("first").wait_ready()
    try:
        assert first.api.deploy(SLOW).status == 201
        ids = [first.api.start("stats-slow", {}) for _ in range(EXECUTIONS)]
        first.wait_until_finished(ids[:3])
        until(
            lambda: first.api.get("/stats?workflow=stats-slow&window=1h").body["buckets"],
            what="the first worker counting",
        )
    finally:
        first.kill()
    second = start_worker("second").wait_ready()
    finished = second.wait_until_finished(ids, 90)
    assert {v["status"] for v in finished.values()} == {"completed"}, finished

    def counted() -> dict[str, int] | None:
        buckets = second.api.get("/stats?workflow=stats-slow&window=1h").body["buckets"]
        total = {n: sum(b[n] for b in buckets) for n in ("started", "completed")}
        return total if total["completed"] >= EXECUTIONS else None

    total = until(counted, what=f"the stats counting {EXECUTIONS} completed executions")
    assert total["started"] >= EXECUTIONS, total
