"""One Kafka connection, read from a Kafka client properties file (or --broker), translated
once for confluent-kafka, aiokafka and Faust."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
import trustme

from braidflow.kafka_connection import (
    SASL_MECHANISMS,
    KafkaConfigError,
    KafkaConnection,
    kafka_connection,
    read_properties,
)

DOCS = Path(__file__).parents[2] / "docs" / "kafka"


def connection(text: str) -> KafkaConnection:
    return KafkaConnection.from_properties(
        read_properties(text, "client.properties"), "client.properties"
    )


def test_a_properties_file_is_read_as_kafkas_own_tools_read_it() -> None:
    text = (
        "# a comment\n"
        "! another\n"
        "\n"
        "bootstrap.servers = a:9092,\\\n"
        "    b:9092\n"
        "client.id: orders\n"
        "security.protocol=SSL\n"
    )
    assert read_properties(text) == {
        "bootstrap.servers": "a:9092,b:9092",
        "client.id": "orders",
        "security.protocol": "SSL",
    }


def test_a_line_that_is_no_property_is_named_by_file_and_line() -> None:
    with pytest.raises(KafkaConfigError, match=r"client.properties:2: expected key=value"):
        read_properties("bootstrap.servers=a:9092\n=oops\n", "client.properties")


@pytest.mark.parametrize(
    ("address", "servers"),
    [
        ("127.0.0.1:9092", ("127.0.0.1:9092",)),
        ("kafka://127.0.0.1:9092", ("127.0.0.1:9092",)),
        ("kafka://a:9092;kafka://b:9093", ("a:9092", "b:9093")),
        ("a:9092, b:9093", ("a:9092", "b:9093")),
    ],
)
def test_broker_takes_host_port_lists_and_fausts_kafka_url(
    address: str, servers: tuple[str, ...]
) -> None:
    plain = KafkaConnection.plain(address)
    assert plain.bootstrap_servers == servers
    # librdkafka gets bare host:port: a kafka:// URL failed with "Broker transport failure".
    assert plain.confluent()["bootstrap.servers"] == ",".join(servers)
    assert plain.aiokafka()["bootstrap_servers"] == list(servers)
    assert plain.faust()["broker"] == [f"kafka://{s}" for s in servers]


@pytest.mark.parametrize("address", ["localhost", "http://a:9092", "a:port", ""])
def test_an_address_that_is_not_host_port_is_refused_naming_it(address: str) -> None:
    with pytest.raises(KafkaConfigError, match="--broker"):
        KafkaConnection.plain(address)


def test_plaintext_translates_to_no_credentials() -> None:
    plain = connection("bootstrap.servers=k:9092\n")
    assert plain.confluent() == {"bootstrap.servers": "k:9092", "security.protocol": "PLAINTEXT"}
    assert plain.aiokafka() == {"bootstrap_servers": ["k:9092"], "security_protocol": "PLAINTEXT"}
    assert "broker_credentials" not in plain.faust()


@pytest.mark.parametrize("mechanism", SASL_MECHANISMS)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_every_sasl_mechanism_reaches_both_client_libraries(mechanism: str, protocol: str) -> None:
    sasl = connection(
        "bootstrap.servers=k:9096\n"
        f"security.protocol={protocol}\n"
        f"sasl.mechanism={mechanism}\n"
        "sasl.username=flow\n"
        "sasl.password=s3cret\n"
    )
    confluent = sasl.confluent()
    assert confluent["security.protocol"] == protocol
    assert confluent["sasl.mechanism"] == mechanism
    assert (confluent["sasl.username"], confluent["sasl.password"]) == ("flow", "s3cret")

    aiokafka = sasl.aiokafka()
    assert aiokafka["security_protocol"] == protocol
    assert aiokafka["sasl_mechanism"] == mechanism
    assert (aiokafka["sasl_plain_username"], aiokafka["sasl_plain_password"]) == ("flow", "s3cret")
    assert isinstance(aiokafka.get("ssl_context"), ssl.SSLContext) == (protocol == "SASL_SSL")

    credentials = sasl.faust()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == mechanism
    assert credentials.protocol.value == protocol
    assert (credentials.username, credentials.password) == ("flow", "s3cret")


def test_librdkafkas_plural_sasl_mechanisms_is_read_too() -> None:
    sasl = connection(
        "bootstrap.servers=k:9092\nsecurity.protocol=sasl_ssl\nsasl.mechanisms=plain\n"
        "sasl.username=key\nsasl.password=secret\n"
    )
    assert sasl.sasl_mechanism == "PLAIN"
    assert sasl.security_protocol == "SASL_SSL"
    assert "sasl.mechanisms" not in sasl.confluent()


@pytest.mark.parametrize(
    ("module", "mechanism"),
    [
        ("org.apache.kafka.common.security.plain.PlainLoginModule", "PLAIN"),
        ("org.apache.kafka.common.security.scram.ScramLoginModule", "SCRAM-SHA-512"),
    ],
)
def test_the_java_clients_jaas_config_gives_the_user_and_password(
    module: str, mechanism: str
) -> None:
    sasl = connection(
        "bootstrap.servers=k:9092\nsecurity.protocol=SASL_SSL\n"
        + ("sasl.mechanism=SCRAM-SHA-512\n" if mechanism != "PLAIN" else "")
        + f"sasl.jaas.config={module} required \\\n"
        "    username=\"flow\" password='pa ss';\n"
    )
    assert (sasl.sasl_mechanism, sasl.sasl_username, sasl.sasl_password) == (
        mechanism,
        "flow",
        "pa ss",
    )
    # librdkafka has no sasl.jaas.config: it would refuse the whole configuration.
    assert "sasl.jaas.config" not in sasl.confluent()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("security.protocol=SSL\n", "bootstrap.servers is missing"),
        ("bootstrap.servers=k:1\nsecurity.protocol=TLS\n", "security.protocol 'TLS'"),
        (
            "bootstrap.servers=k:1\nsecurity.protocol=SASL_SSL\nsasl.mechanism=GSSAPI\n"
            "sasl.username=u\nsasl.password=p\n",
            "sasl.mechanism 'GSSAPI'",
        ),
        (
            "bootstrap.servers=k:1\nsecurity.protocol=SASL_SSL\n",
            "needs sasl.mechanism, one of PLAIN",
        ),
        (
            "bootstrap.servers=k:1\nsecurity.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n",
            "needs sasl.username and sasl.password",
        ),
        (
            "bootstrap.servers=k:1\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=p\n",
            "use SASL_SSL",
        ),
        ("bootstrap.servers=k:1\nssl.ca.location=/ca.pem\n", "use SSL"),
        (
            "bootstrap.servers=k:1\nsecurity.protocol=SSL\nssl.certificate.location=/c.pem\n",
            "needs both ssl.certificate.location and ssl.key.location",
        ),
        (
            "bootstrap.servers=k:1\nssl.truststore.location=/t.jks\n",
            "ssl.truststore.location is a Java client property",
        ),
        (
            "bootstrap.servers=k:1\nsecurity.protocol=SASL_SSL\n"
            "sasl.jaas.config=com.example.Login required;\n",
            "login module 'com.example.Login'",
        ),
    ],
)
def test_a_connection_braidflow_cannot_use_is_refused_naming_the_property(
    text: str, named: str
) -> None:
    with pytest.raises(KafkaConfigError, match=r"client\.properties") as refused:
        connection(text)
    assert named in str(refused.value)


def test_other_librdkafka_properties_go_to_the_confluent_clients_only() -> None:
    tuned = connection(
        "bootstrap.servers=k:9092\nsocket.keepalive.enable=true\nlinger.ms=50\nclient.id=orders\n"
    )
    config = tuned.confluent({"linger.ms": 2, "group.id": "g"})
    assert config["socket.keepalive.enable"] == "true"
    # A client's own settings carry braidflow's guarantees and win.
    assert config["linger.ms"] == 2
    assert config["group.id"] == "g"
    assert config["client.id"] == "orders"
    options = tuned.aiokafka("braidflow-executor")
    assert "socket.keepalive.enable" not in options and "linger_ms" not in options
    # The file's client.id names every client (quotas and ACLs are per client id).
    assert options["client_id"] == "orders"
    assert tuned.faust()["broker_client_id"] == "orders"
    assert KafkaConnection().aiokafka("braidflow-executor")["client_id"] == "braidflow-executor"


def test_secrets_stay_out_of_the_connections_repr() -> None:
    sasl = connection(
        "bootstrap.servers=k:9092\nsecurity.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
        "sasl.username=key\nsasl.password=hunter2\n"
    )
    assert "hunter2" not in repr(sasl)
    assert "key" in sasl.describe() and "hunter2" not in sasl.describe()


@pytest.fixture
def ca_files(tmp_path: Path) -> dict[str, Path]:
    ca = trustme.CA()
    client = ca.issue_cert("braidflow-client")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "client.pem", "key": tmp_path / "k.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    return files


def test_tls_with_a_private_ca_and_a_client_certificate(ca_files: dict[str, Path]) -> None:
    tls = connection(
        "bootstrap.servers=k:9093\nsecurity.protocol=SSL\n"
        f"ssl.ca.location={ca_files['ca']}\n"
        f"ssl.certificate.location={ca_files['cert']}\n"
        f"ssl.key.location={ca_files['key']}\n"
    )
    confluent = tls.confluent()
    assert confluent["ssl.ca.location"] == str(ca_files["ca"])
    assert confluent["ssl.certificate.location"] == str(ca_files["cert"])
    assert confluent["ssl.key.location"] == str(ca_files["key"])
    assert confluent["ssl.endpoint.identification.algorithm"] == "https"
    context = tls.aiokafka()["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # Made once: every aiokafka client and Faust share the one context.
    assert tls.aiokafka()["ssl_context"] is context
    assert tls.faust()["broker_credentials"].context is context


def test_hostname_checks_can_be_turned_off_for_both_libraries(ca_files: dict[str, Path]) -> None:
    tls = connection(
        "bootstrap.servers=k:9093\nsecurity.protocol=SSL\n"
        f"ssl.ca.location={ca_files['ca']}\nssl.endpoint.identification.algorithm=none\n"
    )
    assert tls.confluent()["ssl.endpoint.identification.algorithm"] == "none"
    assert tls.aiokafka()["ssl_context"].check_hostname is False


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    tls = connection(
        f"bootstrap.servers=k:9093\nsecurity.protocol=SSL\nssl.ca.location={tmp_path}/none.pem\n"
    )
    with pytest.raises(KafkaConfigError, match=r"client\.properties: cannot load the TLS files"):
        tls.aiokafka()


def test_broker_replaces_the_files_bootstrap_servers(tmp_path: Path) -> None:
    path = tmp_path / "client.properties"
    path.write_text(
        "bootstrap.servers=far:9092\nsecurity.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
        "sasl.username=u\nsasl.password=p\n"
    )
    both = kafka_connection("near:9092", path)
    assert both.bootstrap_servers == ("near:9092",)
    assert both.sasl_username == "u"
    assert kafka_connection(None, path).bootstrap_servers == ("far:9092",)
    assert kafka_connection(None, None) == KafkaConnection()


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(KafkaConfigError, match=r"none\.properties: cannot read"):
        KafkaConnection.load(tmp_path / "none.properties")


@pytest.mark.parametrize(
    ("sample", "protocol", "mechanism"),
    [
        ("confluent-cloud.properties", "SASL_SSL", "PLAIN"),
        ("msk-scram.properties", "SASL_SSL", "SCRAM-SHA-512"),
        ("redpanda.properties", "SASL_SSL", "SCRAM-SHA-256"),
        ("apache-kafka.properties", "SSL", None),
    ],
)
def test_the_sample_properties_files_of_the_docs_are_read(
    sample: str, protocol: str, mechanism: str | None
) -> None:
    sampled = KafkaConnection.load(DOCS / sample)
    assert sampled.security_protocol == protocol
    assert sampled.sasl_mechanism == mechanism
    assert sampled.confluent()["bootstrap.servers"] == sampled.address
    assert sampled.librdkafka == ()


def test_the_docs_have_a_sample_for_every_file_this_test_reads() -> None:
    assert {p.name for p in DOCS.glob("*.properties")} == {
        "confluent-cloud.properties",
        "msk-scram.properties",
        "redpanda.properties",
        "apache-kafka.properties",
    }
