"""bench/scale_bench.py's pure parts: its options, the counts it reads from a worker's /metrics,
and the figures it prints for one worker count (no broker, no worker, nothing timed)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parents[2] / "bench"

METRICS = """\
# HELP braidflow_transitions_total Transitions the orchestrator consumed, by kind and outcome.
# TYPE braidflow_transitions_total counter
braidflow_transitions_total{kind="StartExecution",outcome="applied"} 600.0
braidflow_transitions_total{kind="NodeCompleted",outcome="applied"} 1800.0
braidflow_transitions_total{kind="NodeCompleted",outcome="ignored"} 12.0
braidflow_transitions_created{kind="StartExecution",outcome="applied"} 1.7e+09
braidflow_tasks_run_total{kind="task",outcome="completed"} 1790.0
braidflow_tasks_run_total{kind="task",outcome="failed"} 10.0
braidflow_tasks_handed_over_total 631.0
braidflow_tasks_handed_over_created 1.7e+09
"""


@pytest.fixture(scope="module")
def scale() -> Iterator[ModuleType]:
    # The benches import each other by name, as `python bench/scale_bench.py` runs them.
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCH))
        yield importlib.import_module("scale_bench")


def test_options_default_to_1_2_and_4_workers_on_4_partitions(scale: ModuleType) -> None:
    args = scale.parse_args([])
    assert (args.workers, args.partitions, args.executions, args.idle) == ([1, 2, 4], 4, 600, 5.0)
    args = scale.parse_args(["--workers", "3", "--partitions", "2", "--broker", "k:9092"])
    assert (args.workers, args.partitions, args.broker) == ([3], 2, "k:9092")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--workers", "1,0"), ("--workers", "1,two"), ("--partitions", "0"), ("--idle", "0")],
)
def test_a_count_below_one_is_refused_naming_the_option(
    scale: ModuleType, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        scale.parse_args([option, value])
    assert exited.value.code == 2
    assert option in capsys.readouterr().err


def test_the_counts_are_applied_transitions_every_task_run_and_those_handed_over(
    scale: ModuleType,
) -> None:
    assert scale.metric_counts(METRICS) == (2400, 1800, 631)
    assert scale.metric_counts("") == (0, 0, 0)


def _sample(
    scale: ModuleType, at: float, counts: list[int], cpu: list[float], broker: float
) -> object:
    return scale.Sample(
        at=at,
        counts=[(n, n // 2, n // 4) for n in counts],
        cpu=cpu,
        main_cpu=[c * 0.9 for c in cpu],
        broker_cpu=broker,
        machine=(at * 2, at * 2),
    )


def test_the_figures_share_the_transitions_and_show_a_spare_worker(scale: ModuleType) -> None:
    # Two workers apply 1,000 transitions each in 10 s (400 fan-outs of 5 records), the third
    # holds no partition.
    idle = _sample(scale, 0.0, [0, 0, 0], [0.0, 0.0, 0.0], 0.0)
    before = _sample(scale, 5.0, [0, 0, 0], [0.1, 0.5, 0.5], 0.0)
    after = _sample(scale, 15.0, [0, 1000, 1000], [0.4, 2.6, 2.6], 1.4)
    figures = scale.Figures(3, 4.2, 10.0, 400, 5.0, idle, before, after)
    lines = scale.format_figures(figures, 2, broker_measured=True).splitlines()
    assert lines[0] == "3 worker(s), 2 partitions, 400 fan-outs at once"
    row = {line[:38].strip(): line[38:].split() for line in lines[1:8]}
    assert row["executions/s"] == ["40"]
    assert row["transitions applied, all workers"] == ["2000", "(expected", "2000)"]
    # (0.3 + 2.1 + 2.1) s of the workers' CPU over 2,000 transitions; 1.4 s of the broker's.
    assert row["CPU per transition, all workers"][:2] == ["2.25", "ms"]
    assert row["CPU per transition, broker"][:2] == ["0.70", "ms"]
    # 40 executions/s on (4.5 + 1.4) s / 10 s = 0.59 of a core.
    assert lines[-4].split()[-1] == "68"
    spare, busy = lines[-3], lines[-2]
    assert "applied      0 (  0%), CPU per own transition      -   ," in spare
    assert "per transition of all 0.15 ms" in spare
    assert "idle   20 ms/s" in spare
    assert "applied   1000 ( 50%), CPU per own transition   2.10 ms" in busy
    assert "tasks run 500 (250 handed over)" in busy
