"""Every setting has one variable and one option, both made from the fields of `Settings`;
the Kafka connection comes from --broker and --kafka-config (or their variables)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from braidflow.cli import main
from braidflow.config import Settings, setting_sources, settings_from_env
from braidflow.kafka_connection import KafkaConnection

SASL = (
    "bootstrap.servers=far:9096\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\n"
    "sasl.username=flow\nsasl.password=s3cret\n"
)


def test_every_setting_but_the_connection_has_a_variable_and_an_option() -> None:
    named = {source.name for source in setting_sources()}
    assert named == {f.name for f in dataclasses.fields(Settings)} - {"kafka"}
    for source in setting_sources():
        assert source.env.startswith("BRAIDFLOW_") and source.option.startswith("--")


@pytest.mark.parametrize("command", ["worker", "dev"])
def test_the_commands_offer_an_option_per_setting_naming_its_variable(command: str) -> None:
    help_text = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
    for source in [*setting_sources()]:
        assert source.option in help_text
        assert source.env in help_text
    assert "--kafka-config" in help_text and "BRAIDFLOW_KAFKA_CONFIG" in help_text


def test_each_variable_is_read_with_its_fields_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAIDFLOW_MAX_RECORD_BYTES", "2000000")
    monkeypatch.setenv("BRAIDFLOW_EVENT_TTL_S", "1.5")
    monkeypatch.setenv("BRAIDFLOW_CLOCK_OFFSET_FILE", "/tmp/offset")
    monkeypatch.setenv("BRAIDFLOW_HANDLERS", "a.handlers, b.handlers")
    settings = settings_from_env()
    assert settings.max_record_bytes == 2_000_000
    assert settings.event_ttl_s == 1.5
    assert settings.clock_offset_file == Path("/tmp/offset")
    assert settings.handler_modules == ("a.handlers", "b.handlers")


def test_a_variable_of_the_wrong_type_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAIDFLOW_API_PORT", "eighty")
    with pytest.raises(ValueError, match="BRAIDFLOW_API_PORT='eighty' is not a valid api_port"):
        settings_from_env()


def test_the_kafka_config_variable_gives_the_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "client.properties"
    path.write_text(SASL)
    monkeypatch.setenv("BRAIDFLOW_KAFKA_CONFIG", str(path))
    assert settings_from_env().kafka == KafkaConnection.load(path)
    # --broker (or BRAIDFLOW_BROKER) replaces the file's servers, keeping its credentials.
    monkeypatch.setenv("BRAIDFLOW_BROKER", "kafka://near:9092")
    near = settings_from_env().kafka
    assert near.bootstrap_servers == ("near:9092",)
    assert near.sasl_mechanism == "SCRAM-SHA-256"
    assert settings_from_env(broker="other:9092").kafka.address == "other:9092"


def test_a_kafka_config_braidflow_cannot_use_stops_the_worker_with_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "client.properties"
    path.write_text("bootstrap.servers=k:9092\nsecurity.protocol=SASL_SSL\n")
    result = CliRunner().invoke(main, ["worker", "--kafka-config", str(path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {path}: security.protocol SASL_SSL needs sasl.mechanism, one of PLAIN,"
        " SCRAM-SHA-256, SCRAM-SHA-512"
    ]


def test_a_read_model_that_is_no_postgresql_url_is_refused_before_the_worker_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRAIDFLOW_READ_MODEL", "mysql://db/history")
    with pytest.raises(ValueError, match=r"^BRAIDFLOW_READ_MODEL: not a postgresql:// URL"):
        settings_from_env()
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2
    assert "BRAIDFLOW_READ_MODEL: not a postgresql:// URL" in result.output
    monkeypatch.setenv("BRAIDFLOW_READ_MODEL", "postgresql://db/history")
    assert settings_from_env().read_model == "postgresql://db/history"
