"""The router's commit: having read nothing that moves an offset is not an error to retry forever."""

from __future__ import annotations

import confluent_kafka
import pytest

from braidflow.streams.router import _commit


def test_committing_with_no_offset_stored_is_no_error() -> None:
    # No broker is needed: librdkafka refuses the commit locally.
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": "127.0.0.1:1", "group.id": "g", "log_level": 0}
    )
    try:
        with pytest.raises(confluent_kafka.KafkaException):
            consumer.commit(asynchronous=False)
        _commit(consumer)
    finally:
        consumer.close()
