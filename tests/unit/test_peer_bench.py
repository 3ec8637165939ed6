"""bench/peer_celery.py's pure parts: its options, issue 18's targets from one round's
figures, and the tables it prints (no Celery, no Redis, no broker, nothing timed)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parents[2] / "bench"


@pytest.fixture(scope="module")
def peer() -> Iterator[ModuleType]:
    # The benches import each other by name, as `python bench/peer_celery.py` runs them.
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCH))
        yield importlib.import_module("peer_celery")


def _round(peer: ModuleType, **braidflow: float) -> object:
    ours = {
        "executions_per_s": 300.0,
        "transitions_per_s": 2100.0,
        "worker_cpu_ms": 0.25,
        "broker_cpu_ms": 0.4,
        "chain_p50_ms": 12.0,
        "chain_p99_ms": 30.0,
        "floor_p50_ms": 2.0,
        "floor_p99_ms": 4.0,
        **braidflow,
    }
    celery = {
        "executions_per_s": 150.0,
        "worker_cpu_ms_per_execution": 3.0,
        "broker_cpu_ms_per_execution": 1.0,
        "chain_p50_ms": 5.0,
        "chain_p99_ms": 9.0,
    }
    return peer.Round(ours, celery, (7.5, 8.0, 6.25))


def test_options_default_to_one_round_of_1000_executions(peer: ModuleType) -> None:
    args = peer.parse_args([])
    assert (args.rounds, args.executions, args.broker) == (1, 1000, None)
    args = peer.parse_args(["--rounds", "3", "--executions", "200", "--broker", "k:9092"])
    assert (args.rounds, args.executions, args.broker) == (3, 200, "k:9092")


@pytest.mark.parametrize("option", ["--rounds", "--executions"])
def test_a_count_below_one_is_refused_naming_the_option(
    peer: ModuleType, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        peer.parse_args([option, "0"])
    assert exited.value.code == 2
    assert option in capsys.readouterr().err
    with pytest.raises(SystemExit):
        peer.parse_args([option, "many"])


def test_targets_are_the_issues_ratios_met_at_their_bounds(peer: ModuleType) -> None:
    # 300/150 = 2 x Celery's executions/s, 12/5 = 2.4 x its chain p50, 12/2 = 6 x the floor.
    got = {t.name: (round(t.value, 3), t.met) for t in peer.targets(_round(peer))}
    assert got == {
        "fan-out executions/s, braidflow / Celery": (2.0, True),
        "chain p50, braidflow / Celery": (2.4, False),
        "chain p50, braidflow / bare 2-hop round trip": (6.0, True),
        "worker CPU per transition": (0.25, True),
    }
    slower = {t.name: t.met for t in peer.targets(_round(peer, executions_per_s=299.0))}
    assert not slower["fan-out executions/s, braidflow / Celery"]
    costlier = {t.name: t.met for t in peer.targets(_round(peer, worker_cpu_ms=0.26))}
    assert not costlier["worker CPU per transition"]


def test_a_round_prints_both_sides_and_each_target_met_or_not(peer: ModuleType) -> None:
    text = peer.format_round(2, 3, _round(peer), 1000)
    lines = text.splitlines()
    assert lines[0] == "round 2 of 3, load average 7.50 8.00 6.25 (1, 5, 15 min) at its end"
    row = {line.split("  ")[1].strip(): line.split()[-4:] for line in lines if "  " in line}
    assert row["executions/s"][-2:] == ["300", "150"]
    # Per execution: 7 transitions (its node moves) at 0.25 ms, Celery's four tasks' 3 ms.
    assert row["worker CPU per execution"] == ["1.75", "ms", "3.00", "ms"]
    assert row["broker CPU per execution (Tansu, Redis)"] == ["2.80", "ms", "1.00", "ms"]
    assert row["p50"] == ["12.0", "ms", "5.0", "ms"]
    verdicts = [
        line.rsplit("   ", 1)[-1] for line in lines[lines.index("targets (issue 18)") + 1 :]
    ]
    assert verdicts == ["met", "NOT MET", "met", "met"]
    assert all(line == line.rstrip() for line in lines)


def test_without_the_embedded_broker_no_broker_cpu_is_printed(peer: ModuleType) -> None:
    round_ = _round(peer)
    del round_.braidflow["broker_cpu_ms"]
    assert "broker CPU" not in peer.format_round(1, 1, round_, 1000)


def test_the_summary_gives_each_targets_range_and_rounds_met(peer: ModuleType) -> None:
    rounds = [_round(peer), _round(peer, executions_per_s=450.0, chain_p50_ms=8.0)]
    lines = peer.format_summary(rounds).splitlines()
    assert lines[0] == "2 rounds in a row"
    fan, chain, floor, cpu = lines[1:]
    assert "2.00 - 3.00" in fan and fan.endswith("met in 2 of 2")
    assert "1.60 - 2.40" in chain and chain.endswith("met in 1 of 2")
    assert "4.00 - 6.00" in floor and floor.endswith("met in 2 of 2")
    assert cpu.endswith("met in 2 of 2")
