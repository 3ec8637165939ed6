"""Why Kafka cannot be reached, in one line, from what librdkafka reported."""

from __future__ import annotations

from confluent_kafka import KafkaError

from braidflow.kafka_connection import KafkaConnection
from braidflow.kafka_reach import failure_cause

TLS = KafkaConnection(bootstrap_servers=("kafka-1:9093",), security_protocol="SSL")
METADATA = "Failed to get metadata: Local: Broker transport failure"
DOWN = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
REFUSED = KafkaError(
    KafkaError._TRANSPORT,
    "kafka-1:9093/bootstrap: Connect to ipv4#10.0.0.7:9093 failed: Connection refused"
    " (after 0ms in state CONNECT)",
)


def test_a_refused_tls_handshake_is_the_cause_whatever_else_was_said() -> None:
    handshake = KafkaError(
        KafkaError._SSL,
        "ssl://kafka-1:9093/bootstrap: SSL handshake failed: certificate verify failed"
        " (after 5ms in state SSL_HANDSHAKE)",
    )
    cause = failure_cause(TLS, [REFUSED, DOWN, handshake], [], METADATA)
    assert cause == "SSL handshake failed: certificate verify failed"


def test_refused_credentials_are_the_cause() -> None:
    sasl = KafkaConnection(
        bootstrap_servers=("b-1:9096",),
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="flow",
        sasl_password="wrong",
    )
    login = KafkaError(
        KafkaError._AUTHENTICATION,
        "sasl_ssl://b-1:9096/bootstrap: SASL authentication error: Authentication failed"
        " during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        " (after 12ms in state AUTH_REQ)",
    )
    assert failure_cause(sasl, [DOWN, login], [], METADATA) == (
        "SASL authentication error: Authentication failed during authentication due to"
        " invalid credentials with SASL mechanism SCRAM-SHA-512"
    )


def test_a_refused_connection_is_named_without_the_clients_noise() -> None:
    cause = failure_cause(TLS, [REFUSED, DOWN], [], METADATA)
    assert cause == "Connect to ipv4#10.0.0.7:9093 failed: Connection refused"


def test_closed_connections_with_no_error_ask_whether_the_protocol_is_the_listeners() -> None:
    closed = (
        "[thrd:kafka-1:9093/bootstrap]: kafka-1:9093/bootstrap: Disconnected: connection"
        " closed by peer: receive 0 after POLLIN (after 0ms in state APIVERSION_QUERY)"
    )
    assert failure_cause(TLS, [DOWN], [closed], METADATA) == (
        "Disconnected: connection closed by peer: receive 0 after POLLIN"
        " (is SSL the listener's security.protocol?)"
    )
    assert failure_cause(TLS, [], [], METADATA) == (
        f"{METADATA} (is SSL the listener's security.protocol?)"
    )
