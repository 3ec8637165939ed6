"""How braidflow reaches Kafka: one connection, read from a Kafka client properties file.

The file is the one Kafka's own tools take with `--command-config`: `key=value` lines,
`#` or `!` comments. braidflow understands the connection properties below; every other
property is passed as it is to the confluent-kafka clients (librdkafka names it; an
unknown name is refused when the first client is made, see `braidflow/kafka_reach.py`).

    bootstrap.servers        host:port[,host:port...]
    security.protocol        PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
    ssl.ca.location          PEM file of the CA(s) the brokers' certificates chain to
                             (unset: the system's trusted CAs)
    ssl.certificate.location, ssl.key.location, ssl.key.password
                             a client certificate, for clusters that ask for one
    ssl.endpoint.identification.algorithm
                             https (the default: check the broker's name) or none
    sasl.mechanism           PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (librdkafka's
                             `sasl.mechanisms` is read too)
    sasl.username, sasl.password
                             or the Java clients' `sasl.jaas.config` with a PlainLoginModule
                             or ScramLoginModule
    client.id                the client id of every client braidflow makes

A `KafkaConnection` is translated once for each client library: `confluent` (a dict for
confluent-kafka's Producer, Consumer and AdminClient), `aiokafka` (keyword arguments of
aiokafka's clients, with an `ssl.SSLContext`) and `faust` (keyword arguments of
`faust.App`). Every Kafka client braidflow makes takes its connection from one of them.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

_UNDERSTOOD = {
    "bootstrap.servers",
    "security.protocol",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "client.id",
}
# Java client properties librdkafka has no equivalent for: named, not passed on.
_JAVA_ONLY = {
    "ssl.truststore.location": "ssl.ca.location (a PEM file)",
    "ssl.truststore.password": "ssl.ca.location (a PEM file)",
    "ssl.truststore.type": "ssl.ca.location (a PEM file)",
    "ssl.keystore.location": "ssl.certificate.location and ssl.key.location (PEM files)",
    "ssl.keystore.password": "ssl.key.password",
    "ssl.keystore.type": "ssl.certificate.location and ssl.key.location (PEM files)",
}
_JAAS_MODULES = {
    "org.apache.kafka.common.security.plain.PlainLoginModule": "PLAIN",
    "org.apache.kafka.common.security.scram.ScramLoginModule": "SCRAM",
}
_JAAS_OPTION = re.compile(r"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


class KafkaConfigError(ValueError):
    """A Kafka client properties file (or broker address) braidflow cannot use; the message
    names the file, line or property."""


def _parse_servers(text: str, where: str) -> tuple[str, ...]:
    """`host:port` addresses from a comma (or `;`) separated list; Faust's `kafka://` accepted."""
    servers = []
    for part in re.split(r"[,;]", text):
        address = part.strip()
        address = address.removeprefix("kafka://").removeprefix("aiokafka://").rstrip("/")
        if not address:
            continue
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or "/" in address:
            raise KafkaConfigError(f"{where}: {part.strip()!r} is not host:port")
        servers.append(address)
    if not servers:
        raise KafkaConfigError(f"{where}: no host:port given")
    return tuple(servers)


def read_properties(text: str, source: str = "properties") -> dict[str, str]:
    """The `key=value` (or `key: value`) pairs of a Java properties text, comments and blank
    lines left out, lines ending in `\\` joined with the next."""
    properties: dict[str, str] = {}
    logical = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip() if not logical else raw.lstrip()
        if not logical:
            start = number
            if not line or line[0] in "#!":
                continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical += line[:-1]
            continue
        logical += line
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", logical)
        if match is None:
            raise KafkaConfigError(f"{source}:{start}: expected key=value, got {logical!r}")
        properties[match.group(1)] = match.group(2).strip()
        logical = ""
    if logical:
        raise KafkaConfigError(f"{source}:{start}: the file ends inside a continued line")
    return properties


def _jaas_credentials(value: str, source: str) -> tuple[str, str, str]:
    """(mechanism family, username, password) of a Java `sasl.jaas.config`."""
    module = value.split(None, 1)[0] if value else ""
    family = _JAAS_MODULES.get(module)
    if family is None:
        known = ", ".join(_JAAS_MODULES)
        raise KafkaConfigError(
            f"{source}: sasl.jaas.config: login module {module!r} is not one of {known};"
            " or give sasl.username and sasl.password"
        )
    options = {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _JAAS_OPTION.finditer(value)
    }
    if "username" not in options or "password" not in options:
        raise KafkaConfigError(f'{source}: sasl.jaas.config needs username="..." password="..."')
    return family, options["username"], options["password"]


@dataclass(frozen=True)
class KafkaConnection:
    """Where the Kafka cluster is and how to authenticate to it; secrets stay out of `repr`."""

    bootstrap_servers: tuple[str, ...] = (DEFAULT_BOOTSTRAP,)
    security_protocol: str = "PLAINTEXT"
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    # Other librdkafka properties, for the confluent-kafka clients only.
    librdkafka: tuple[tuple[str, str], ...] = ()
    # Where it was read from, for messages: a file name, or "--broker".
    source: str = "default"

    def __post_init__(self) -> None:
        where = self.source
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise KafkaConfigError(
                f"{where}: security.protocol {self.security_protocol!r} is not one of"
                f" {', '.join(SECURITY_PROTOCOLS)}"
            )
        if self.uses_sasl:
            if self.sasl_mechanism is None:
                raise KafkaConfigError(
                    f"{where}: security.protocol {self.security_protocol} needs sasl.mechanism,"
                    f" one of {', '.join(SASL_MECHANISMS)}"
                )
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise KafkaConfigError(
                    f"{where}: sasl.mechanism {self.sasl_mechanism!r} is not one of"
                    f" {', '.join(SASL_MECHANISMS)} (security.protocol is"
                    f" {self.security_protocol})"
                )
            if not self.sasl_username or self.sasl_password is None:
                raise KafkaConfigError(
                    f"{where}: security.protocol {self.security_protocol} needs sasl.username"
                    " and sasl.password"
                )
        elif self.sasl_mechanism or self.sasl_username:
            raise KafkaConfigError(
                f"{where}: SASL properties are set but security.protocol is"
                f" {self.security_protocol}: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        if not self.uses_tls and (self.ssl_ca_location or self.ssl_certificate_location):
            raise KafkaConfigError(
                f"{where}: ssl.* locations are set but security.protocol is"
                f" {self.security_protocol}: use SSL (or SASL_SSL)"
            )
        if bool(self.ssl_certificate_location) != bool(self.ssl_key_location):
            raise KafkaConfigError(
                f"{where}: a client certificate needs both ssl.certificate.location and"
                " ssl.key.location"
            )

    @classmethod
    def plain(cls, address: str, source: str = "--broker") -> KafkaConnection:
        """A PLAINTEXT connection to `address`: `host:port`, a comma separated list of them,
        or Faust's `kafka://host:port`."""
        return cls(bootstrap_servers=_parse_servers(address, source), source=source)

    @classmethod
    def from_properties(cls, properties: Mapping[str, str], source: str) -> KafkaConnection:
        """The connection a Kafka client properties mapping describes."""
        for key, instead in _JAVA_ONLY.items():
            if key in properties:
                raise KafkaConfigError(
                    f"{source}: {key} is a Java client property; braidflow's clients take {instead}"
                )
        if "bootstrap.servers" not in properties:
            raise KafkaConfigError(f"{source}: bootstrap.servers is missing")
        mechanism = properties.get("sasl.mechanism") or properties.get("sasl.mechanisms")
        username = properties.get("sasl.username")
        password = properties.get("sasl.password")
        if "sasl.jaas.config" in properties and username is None:
            family, username, password = _jaas_credentials(properties["sasl.jaas.config"], source)
            if family == "PLAIN" and mechanism is None:
                mechanism = "PLAIN"
        algorithm = properties.get("ssl.endpoint.identification.algorithm", "https").lower()
        if algorithm not in ("https", "none", ""):
            raise KafkaConfigError(
                f"{source}: ssl.endpoint.identification.algorithm {algorithm!r} is not https or none"
            )
        return cls(
            bootstrap_servers=_parse_servers(
                properties["bootstrap.servers"], f"{source}: bootstrap.servers"
            ),
            security_protocol=properties.get("security.protocol", "PLAINTEXT").upper(),
            ssl_ca_location=properties.get("ssl.ca.location") or None,
            ssl_certificate_location=properties.get("ssl.certificate.location") or None,
            ssl_key_location=properties.get("ssl.key.location") or None,
            ssl_key_password=properties.get("ssl.key.password") or None,
            ssl_check_hostname=algorithm == "https",
            sasl_mechanism=mechanism.upper() if mechanism else None,
            sasl_username=username,
            sasl_password=password,
            client_id=properties.get("client.id") or None,
            librdkafka=tuple(sorted((k, v) for k, v in properties.items() if k not in _UNDERSTOOD)),
            source=source,
        )

    @classmethod
    def load(cls, path: Path | str) -> KafkaConnection:
        """The connection the properties file at `path` describes."""
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise KafkaConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        return cls.from_properties(read_properties(text, str(path)), str(path))

    def with_servers(self, address: str) -> KafkaConnection:
        """This connection, to the brokers at `address` instead (as `plain` reads it)."""
        return replace(self, bootstrap_servers=_parse_servers(address, "--broker"))

    @property
    def address(self) -> str:
        """The bootstrap servers, as `bootstrap.servers` writes them."""
        return ",".join(self.bootstrap_servers)

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def describe(self) -> str:
        """The address and how it is reached, for messages: `host:9093 (SASL_SSL, SCRAM-SHA-512)`."""
        how = self.security_protocol
        if self.uses_sasl:
            how += f", {self.sasl_mechanism} as {self.sasl_username}"
        return f"{self.address} ({how})"

    def confluent(self, client: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The configuration of a confluent-kafka client: the connection, the file's other
        librdkafka properties, then `client`, the client's own settings (braidflow's
        acknowledgement, commit and group settings keep their guarantees)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.address,
            "security.protocol": self.security_protocol,
            **dict(self.librdkafka),
        }
        if self.uses_tls:
            optional = {
                "ssl.ca.location": self.ssl_ca_location,
                "ssl.certificate.location": self.ssl_certificate_location,
                "ssl.key.location": self.ssl_key_location,
                "ssl.key.password": self.ssl_key_password,
            }
            config.update({k: v for k, v in optional.items() if v is not None})
            config["ssl.endpoint.identification.algorithm"] = (
                "https" if self.ssl_check_hostname else "none"
            )
        if self.uses_sasl:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password
        config.update(client or {})
        if self.client_id is not None:
            config["client.id"] = self.client_id
        return config

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the aiokafka clients (None without TLS); made once."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(cafile=self.ssl_ca_location)
            context.check_hostname = self.ssl_check_hostname
            if self.ssl_certificate_location:
                context.load_cert_chain(
                    self.ssl_certificate_location, self.ssl_key_location, self.ssl_key_password
                )
        except (OSError, ssl.SSLError) as exc:
            raise KafkaConfigError(
                f"{self.source}: cannot load the TLS files (ssl.ca.location,"
                f" ssl.certificate.location, ssl.key.location): {exc}"
            ) from None
        return context

    def aiokafka(self, client_id: str | None = None) -> dict[str, Any]:
        """Keyword arguments of aiokafka's consumers, producers and admin client."""
        options: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "security_protocol": self.security_protocol,
        }
        if self.ssl_context is not None:
            options["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        chosen = self.client_id or client_id
        if chosen is not None:
            options["client_id"] = chosen
        return options

    def faust(self) -> dict[str, Any]:
        """Keyword arguments of `faust.App`: the broker URLs and their credentials."""
        # Imported here: only the worker needs Faust, and it takes a second to import.
        import faust

        options: dict[str, Any] = {"broker": [f"kafka://{s}" for s in self.bootstrap_servers]}
        if self.uses_sasl:
            options["broker_credentials"] = faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context,
            )
        elif self.ssl_context is not None:
            options["broker_credentials"] = faust.SSLCredentials(self.ssl_context)
        if self.client_id is not None:
            options["broker_client_id"] = self.client_id
        return options


def kafka_connection(broker: str | None, config_file: Path | str | None) -> KafkaConnection:
    """The connection of `--broker` and `--kafka-config`: the file's, its bootstrap servers
    replaced by `broker` when both are given; neither: PLAINTEXT to 127.0.0.1:9092."""
    if config_file:
        connection = KafkaConnection.load(config_file)
        return connection.with_servers(broker) if broker else connection
    return KafkaConnection.plain(broker) if broker else KafkaConnection()
