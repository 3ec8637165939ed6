"""The first contact with Kafka: an admin client whose metadata call says, in one line,
why a cluster cannot be reached (refused, TLS handshake, credentials).

librdkafka answers a failed metadata call with "Local: Broker transport failure"
whatever the cause; the cause itself comes through its error callback, which this
collects and reports instead.
"""

from __future__ import annotations

import re
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from braidflow.kafka_connection import KafkaConnection

# The most telling causes first: a refused handshake or login says more than "all brokers
# are down", which follows either.
_CAUSE_ORDER = (
    KafkaError._SSL,
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._TRANSPORT,
    KafkaError._RESOLVE,
)
_REFUSALS = frozenset(_CAUSE_ORDER[:3])
_ATTEMPT_S = 1.0
_AFTER = re.compile(r"\s*\(after \d+ms in state \w+\)")


class KafkaUnreachable(RuntimeError):
    """Kafka could not be reached or refused braidflow; the message is one line."""


class _Failures:
    """A librdkafka logger keeping the connection failures (facility FAIL) it is told of:
    the cause when the error callback has only "all brokers are down"."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, level: int, fmt: str, *args: object) -> None:
        if len(args) == 3 and args[0] == "FAIL":
            self.lines.append(str(args[2]))


def _clean(text: str) -> str:
    # "[thrd:...]: " and "host:port/bootstrap: " are said once, up front, by the caller.
    text = re.sub(r"^\[thrd:[^\]]*\]: ", "", text)
    text = re.sub(r"^\S+/(bootstrap|\d+): ", "", text)
    return _AFTER.sub("", text).strip()


def failure_cause(
    connection: KafkaConnection, errors: list[KafkaError], failures: list[str], failure: str
) -> str:
    """One line from what librdkafka reported: the most telling error, without the noise."""
    for code in _CAUSE_ORDER:
        found = next((e for e in errors if e.code() == code), None)
        if found is not None:
            return _clean(found.str())
    cause = _clean(failures[-1]) if failures else failure
    # No refusal, no error: connections closed or left unanswered, as happens when the
    # listener speaks another protocol than the client.
    return f"{cause} (is {connection.security_protocol} the listener's security.protocol?)"


def connected_admin(
    connection: KafkaConnection, timeout_s: float = 15.0
) -> tuple[AdminClient, ClusterMetadata]:
    """An admin client of `connection` and the cluster's metadata; KafkaUnreachable, naming
    the address and the cause, when there is no cluster there to use."""
    errors: list[KafkaError] = []
    failures = _Failures()
    try:
        # The cause is reported once, here, not as librdkafka's log lines.
        admin = AdminClient(connection.confluent({"error_cb": errors.append, "logger": failures}))
    except KafkaException as exc:
        raise KafkaUnreachable(
            f"cannot configure a Kafka client from {connection.source}: {exc.args[0].str()}"
        ) from None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return admin, admin.list_topics(timeout=min(_ATTEMPT_S, timeout_s))
        except KafkaException as exc:
            admin.poll(0)  # delivers the error callbacks
            # A refused handshake or login will not pass by waiting; a broker still starting may.
            refused = any(e.code() in _REFUSALS for e in errors)
            if refused or time.monotonic() >= deadline:
                cause = failure_cause(connection, errors, failures.lines, exc.args[0].str())
                raise KafkaUnreachable(
                    f"cannot reach Kafka at {connection.describe()}: {cause}"
                ) from None
