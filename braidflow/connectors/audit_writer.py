"""Writing an audit record from outside a worker: what the command line changes straight in
Kafka (API keys created or revoked) is audited like what the API changes.

    write_audit(producer, settings.topics.audit, "create_key", principal, target={"key": name})

The worker's API writes its records itself (`connectors.api.audit`); both make them with
`braidflow.schemas.audit.audit_record`, so every reader sees one format.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from braidflow.access import Principal
from braidflow.schemas.audit import CLI_SOURCE, AuditRecord, audit_record, encode_audit


class AuditWriteFailed(RuntimeError):
    """The audit record was not acknowledged by the broker."""


def write_audit(
    producer: Producer,
    topic: str,
    action: str,
    principal: Principal,
    *,
    target: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
    source: str = CLI_SOURCE,
    timeout_s: float = 10.0,
) -> AuditRecord:
    """Build the audit record of `action` by `principal` now, write it to `topic` and wait
    for the acknowledgement; the record. AuditWriteFailed if the broker did not take it.

    `detail` keeps only short scalars (see `braidflow.schemas.audit`): never a key itself.
    """
    record = audit_record(
        action,
        principal.name,
        principal.tenant,
        time.time_ns() // 1_000_000,
        target,
        detail,
        source=source,
    )
    key, value, headers = encode_audit(record)
    failures: list[str] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            failures.append(error.str())

    producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
    left = producer.flush(timeout_s)
    if left or failures:
        why = failures[0] if failures else f"not acknowledged within {timeout_s:g} s"
        raise AuditWriteFailed(f"audit record of {action} not written to {topic}: {why}")
    return record
