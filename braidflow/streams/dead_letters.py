"""Dead letters: records that cannot be processed go aside with the reason, never stall a partition.

A dead letter is JSON, so any tool can read it: where the record came from
(topic, partition, offset), its key and value (base64, since the value may be
undecodable), the reason, and when.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    at: int

    def encode(self) -> bytes:
        """The JSON value written to the dead-letter topic."""
        record: dict[str, Any] = asdict(self)
        for name in ("key", "value"):
            raw = record[name]
            record[name] = None if raw is None else base64.b64encode(raw).decode("ascii")
        return json.dumps(record, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> DeadLetter:
        """A dead letter read back from the dead-letter topic."""
        record = json.loads(data)
        for name in ("key", "value"):
            if record[name] is not None:
                record[name] = base64.b64decode(record[name])
        return cls(**record)
