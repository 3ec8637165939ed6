"""The Kafka cluster the integration suite runs on, and how every test-side client reaches it.

By default an embedded broker (Tansu) the suite starts; `BRAIDFLOW_TEST_KAFKA_CONFIG=FILE`
(a Kafka client properties file) or `BRAIDFLOW_TEST_BROKER=HOST:PORT` names another cluster
instead (both: the file, its bootstrap servers replaced). Workarounds for the embedded
broker's limits (`settle_changelogs`) apply only to the embedded broker.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from braidflow.connectors.broker import settle_changelogs
from braidflow.kafka_connection import KafkaConnection, kafka_connection

CONFIG_VARIABLE = "BRAIDFLOW_TEST_KAFKA_CONFIG"
BROKER_VARIABLE = "BRAIDFLOW_TEST_BROKER"


@dataclass(frozen=True)
class SuiteBroker:
    """A cluster tests connect to: every client a test makes takes its settings from here."""

    connection: KafkaConnection
    # The embedded broker (Tansu 0.6): its workarounds apply (see `settle_changelogs`).
    embedded: bool
    # The properties file workers are started with (`--kafka-config`), if any.
    config_file: Path | None = None
    # What workers get as `--broker` (a test may give Faust's `kafka://` form).
    broker_option: str = field(default="")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> SuiteBroker | None:
        """The cluster the environment names; None: the suite starts an embedded broker."""
        config_file = environ.get(CONFIG_VARIABLE) or None
        address = environ.get(BROKER_VARIABLE) or None
        if config_file is None and address is None:
            return None
        return cls(
            kafka_connection(address, config_file),
            embedded=False,
            config_file=Path(config_file) if config_file else None,
        )

    @property
    def address(self) -> str:
        """The bootstrap servers, `host:port[,host:port...]`."""
        return self.connection.address

    def confluent(self, client: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The configuration of a confluent-kafka client on this cluster, `client` added."""
        return self.connection.confluent(client)

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments of an aiokafka client on this cluster."""
        return self.connection.aiokafka()

    def worker_options(self) -> list[str]:
        """How `braidflow worker` (or dev) is told to connect here."""
        options = ["--kafka-config", str(self.config_file)] if self.config_file else []
        return [*options, "--broker", self.broker_option or self.address]

    def settle_changelogs(self, prefix: str) -> None:
        """After a worker of `prefix` was killed: on the embedded broker only, make every
        changelog's end what it is (`braidflow.connectors.broker.settle_changelogs`)."""
        if self.embedded:
            # What the killed worker had sent is taken before the closing records go.
            time.sleep(0.5)
            settle_changelogs(self.connection, prefix)
