"""What is accepted must fit a record: the checks made before a start, an event or a webhook
call is accepted, so nothing is answered 202 that could not be sent or stored.

Every record a worker writes is at most `Settings.max_value_bytes`
(`BRAIDFLOW_MAX_RECORD_BYTES` less headroom for the key, headers and batch
framing). Which size decides:

- a start: its encoded `StartExecution`, which holds the input's JSON text (the
  same text a value row would hold, so a start that fits also has an input
  that fits a row of its own); and then the first step's rows, since the new
  state keeps what it sends until acknowledged (the `workflow.started` event
  carries the input, a first task may carry it again). The orchestrator
  answers that without Kafka (`Orchestrator.first_step_problem`);
- an event: its record on the events topic, and the start of every workflow
  it triggers (which carries the event's data as input, and the event).
"""

from __future__ import annotations

LIMIT_NAME = "BRAIDFLOW_MAX_RECORD_BYTES less headroom"


class RecordTooLarge(Exception):
    """What was sent cannot be accepted: its record would not fit. The message names the
    size and the limit (HTTP 413)."""


def check_record(what: str, encoded: bytes, as_: str, limit: int) -> None:
    """RecordTooLarge unless `encoded` (the record `what` becomes) fits `limit` bytes."""
    if len(encoded) > limit:
        raise RecordTooLarge(
            f"{what}: {len(encoded):,} bytes as {as_}, too large: the limit is {limit:,}"
            f" ({LIMIT_NAME})"
        )
