"""A worker's consumers fetch ahead of their readers within bounds of its own, not the client
libraries' defaults: a reader behind its topic held that much in fetched records."""

from __future__ import annotations

import confluent_kafka

from braidflow.config import CONSUMER_QUEUE_KIB, Settings


def test_a_worker_s_librdkafka_consumers_fetch_ahead_at_most_four_mebibytes() -> None:
    config = Settings().confluent_group("readers", 100)
    assert config["queued.max.messages.kbytes"] == CONSUMER_QUEUE_KIB == 4096
    # librdkafka refuses a property it does not know, or a value out of its range.
    confluent_kafka.Consumer(config).close()
