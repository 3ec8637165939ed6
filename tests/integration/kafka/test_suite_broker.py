"""The suite's cluster: the one the environment names, and the embedded broker's workarounds
applied to the embedded broker only."""

from __future__ import annotations

from pathlib import Path

import pytest
import suite_broker
import yaml
from suite_broker import BROKER_VARIABLE, CONFIG_VARIABLE, SuiteBroker
from workers import DEV_SPEED

from braidflow.kafka_connection import KafkaConnection


def test_without_either_variable_the_suite_starts_its_embedded_broker() -> None:
    assert SuiteBroker.from_environment({}) is None
    assert SuiteBroker.from_environment({CONFIG_VARIABLE: "", BROKER_VARIABLE: ""}) is None


def test_a_broker_address_is_a_plain_cluster_workers_get_as_broker() -> None:
    suite = SuiteBroker.from_environment({BROKER_VARIABLE: "kafka.test:9094"})
    assert suite is not None and not suite.embedded
    assert suite.connection == KafkaConnection.plain("kafka.test:9094")
    assert suite.worker_options() == ["--broker", "kafka.test:9094"]


def test_a_properties_file_connects_every_client_and_worker_as_it_says(tmp_path: Path) -> None:
    properties = tmp_path / "cluster.properties"
    properties.write_text(
        "bootstrap.servers=kafka.test:9096\n"
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.username=tests\n"
        "sasl.password=s3cret\n"
    )
    suite = SuiteBroker.from_environment({CONFIG_VARIABLE: str(properties)})
    assert suite is not None and not suite.embedded
    assert suite.confluent({"linger.ms": 0})["sasl.username"] == "tests"
    assert suite.aiokafka()["sasl_mechanism"] == "SCRAM-SHA-512"
    assert suite.worker_options() == [
        "--kafka-config",
        str(properties),
        "--broker",
        "kafka.test:9096",
    ]
    # Both: the file, its bootstrap servers replaced, as `braidflow worker` reads them.
    both = SuiteBroker.from_environment(
        {CONFIG_VARIABLE: str(properties), BROKER_VARIABLE: "other.test:9096"}
    )
    assert both is not None and both.address == "other.test:9096"
    assert both.connection.sasl_mechanism == "SCRAM-SHA-512"


def test_changelogs_are_settled_on_the_embedded_broker_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settled: list[tuple[KafkaConnection, str]] = []
    monkeypatch.setattr(
        suite_broker, "settle_changelogs", lambda c, prefix: settled.append((c, prefix))
    )
    connection = KafkaConnection.plain("127.0.0.1:9092")
    SuiteBroker(connection, embedded=False).settle_changelogs("t-other")
    assert settled == []
    SuiteBroker(connection, embedded=True).settle_changelogs("t-embedded")
    assert settled == [(connection, "t-embedded")]


def test_the_compose_kafka_for_tests_accepts_the_sessions_the_test_workers_ask_for() -> None:
    override = yaml.safe_load((Path(__file__).parents[1] / "docker-compose.test.yml").read_text())
    kafka = override["services"]["kafka"]["environment"]
    session_ms = int(DEV_SPEED["BRAIDFLOW_SESSION_TIMEOUT_S"]) * 1000
    assert int(kafka["KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS"]) <= session_ms
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "true"
