"""Dev mode's settings on another broker are ones a default Apache Kafka accepts, and a
refused consumer group is reported as one line naming the setting to change."""

from __future__ import annotations

import pytest

from braidflow.config import Settings, group_limit_problems, settings_from_env
from braidflow.streams.group_errors import (
    GROUP_AUTHORIZATION_FAILED,
    INVALID_SESSION_TIMEOUT,
    refusal_line,
)

# Apache Kafka's broker defaults (group.min.session.timeout.ms, group.max.session.timeout.ms),
# written down here on their own so that the test does not read them from the code it checks.
KAFKA_MIN_SESSION_MS = 6_000
KAFKA_MAX_SESSION_MS = 1_800_000


def test_dev_settings_for_another_broker_are_within_apache_kafkas_default_group_limits() -> None:
    dev = Settings().for_dev(embedded=False)
    session_ms = dev.session_timeout_s * 1000
    assert KAFKA_MIN_SESSION_MS <= session_ms <= KAFKA_MAX_SESSION_MS
    # librdkafka (the event router) refuses a max.poll.interval below the session timeout.
    assert dev.max_poll_interval_s >= dev.session_timeout_s
    assert dev.rebalance_timeout_s > 0
    assert group_limit_problems(dev) == []
    # Still dev mode: short fetch waits.
    assert dev.fetch_max_wait_ms <= 10


def test_the_embedded_broker_keeps_fast_group_joins() -> None:
    embedded = Settings().for_dev(embedded=True)
    assert embedded.rebalance_timeout_s <= 3.0
    # Tansu answers a join once half the group's session has passed, in whole seconds: 2 s
    # at a 4 s session, 3 s at 5 s.
    assert embedded.session_timeout_s <= 4.0


def test_a_worker_on_an_embedded_broker_heartbeats_often_enough_for_dev_modes_groups() -> None:
    """Tansu keeps a group's session at its first member's: dev mode's, whatever session a
    worker joining its broker asks for. Each heartbeat of that worker, on default settings,
    leaves room for two late ones within dev mode's session."""
    dev_session = Settings().for_dev(embedded=True).session_timeout_s
    for worker in (Settings(), Settings().for_dev(embedded=True)):
        assert worker.on_embedded_broker().heartbeat_s * 3 < dev_session
    # Elsewhere a quarter of the worker's own session, as before.
    assert Settings().heartbeat_s == Settings().session_timeout_s / 4


def test_a_heartbeat_interval_one_sets_wins_on_the_embedded_broker_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRAIDFLOW_HEARTBEAT_INTERVAL_S", "2")
    settings = settings_from_env(Settings().for_dev(embedded=True))
    assert settings.on_embedded_broker().heartbeat_s == 2.0


def test_a_heartbeat_interval_not_below_the_session_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="BRAIDFLOW_HEARTBEAT_INTERVAL_S: 10 s is not below"):
        Settings(heartbeat_interval_s=10.0)


def test_group_limit_problems_names_a_session_timeout_below_the_brokers_minimum() -> None:
    problems = group_limit_problems(Settings(session_timeout_s=5.0))
    assert len(problems) == 1
    assert "session timeout 5 s" in problems[0]
    assert "group.min.session.timeout.ms" in problems[0]


def test_a_users_own_settings_win_over_dev_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAIDFLOW_SESSION_TIMEOUT_S", "7.5")
    settings = settings_from_env(Settings().for_dev(embedded=True), partitions=6)
    assert settings.session_timeout_s == 7.5
    assert settings.partitions == 6
    # What the user left alone keeps its dev value.
    assert settings.fetch_max_wait_ms == Settings().for_dev().fetch_max_wait_ms


def test_an_invalid_session_timeout_is_one_line_naming_the_setting() -> None:
    line = refusal_line(INVALID_SESSION_TIMEOUT, "braidflow", Settings(session_timeout_s=5.0))
    assert "\n" not in line
    assert "'braidflow'" in line
    assert "session timeout 5 s" in line
    assert "BRAIDFLOW_SESSION_TIMEOUT_S" in line


def test_a_group_not_authorized_is_one_line_naming_the_prefix() -> None:
    line = refusal_line(GROUP_AUTHORIZATION_FAILED, "acme-executors", Settings(prefix="acme"))
    assert "\n" not in line
    assert "not authorized" in line
    assert "'acme'" in line
    assert "--prefix" in line
