"""Node run logs on the logs topic: one JSON record per node run that logged, keyed by execution.

JSON, not Avro, as dead letters and audit records: log lines are read by people and by log
tools (`kafka-console-consumer`, a shipper to Loki or Elasticsearch) that should need no
schema, and nothing in the engine reads them.

    {"id": "<idempotency key>", "execution_id", "tenant", "workflow_id", "node_id",
     "attempt", "item" (or null), "at" (epoch ms, when the run ended),
     "lines": [{"at", "level", "message"}], "cut" (bool), "cut_lines" (int)}

`id` is the task's idempotency key, one per node run: a run delivered twice (at least once)
gives the same record twice, and a read model keeps one.

Kept `LOGS_RETENTION_MS` (7 days): on the topic (`retention.ms`, set when braidflow creates
it), and in each worker's read model, which drops runs older than its newest by as much.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from braidflow.access import DEFAULT_TENANT
from braidflow.engine.state import iso_time
from braidflow.node_logs import LogLine

LOGS_RETENTION_MS = 7 * 24 * 3600 * 1000
"""How long node run logs are kept: enough to look into a run, short enough that chatty
handlers do not fill the cluster."""


@dataclass(frozen=True, slots=True)
class NodeRunLog:
    """What one node run logged."""

    id: str
    execution_id: str
    workflow_id: str
    node_id: str
    attempt: int
    at: int
    lines: tuple[LogLine, ...]
    item: int | None = None
    tenant: str = DEFAULT_TENANT
    cut: bool = False
    cut_lines: int = 0

    def encode(self) -> bytes:
        """The record's value."""
        return json.dumps(
            {
                "id": self.id,
                "execution_id": self.execution_id,
                "tenant": self.tenant,
                "workflow_id": self.workflow_id,
                "node_id": self.node_id,
                "attempt": self.attempt,
                "item": self.item,
                "at": self.at,
                "lines": [
                    {"at": line.at, "level": line.level, "message": line.message}
                    for line in self.lines
                ],
                "cut": self.cut,
                "cut_lines": self.cut_lines,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    def view(self) -> dict[str, Any]:
        """The run's entry of `GET /executions/{id}/logs`."""
        return {
            "node_id": self.node_id,
            "attempt": self.attempt,
            "item": self.item,
            "lines": [
                {"at": iso_time(line.at), "level": line.level, "message": line.message}
                for line in self.lines
            ],
            "cut": self.cut,
            "cut_lines": self.cut_lines,
        }


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "execution_id": str,
    "tenant": str,
    "workflow_id": str,
    "node_id": str,
    "attempt": int,
    "at": int,
    "lines": list,
    "cut": bool,
    "cut_lines": int,
}


def decode_node_log(value: bytes) -> NodeRunLog:
    """The node run log of a record's value; ValueError saying why it is none."""
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for name, kind in _FIELDS.items():
        if not isinstance(data.get(name), kind) or (kind is int and isinstance(data[name], bool)):
            raise ValueError(f"field {name!r} is missing or not of type {kind}")
    item = data.get("item")
    if item is not None and (not isinstance(item, int) or isinstance(item, bool)):
        raise ValueError("field 'item' is not an integer")
    lines = []
    for line in data["lines"]:
        if not (
            isinstance(line, dict)
            and isinstance(line.get("at"), int)
            and isinstance(line.get("level"), str)
            and isinstance(line.get("message"), str)
        ):
            raise ValueError(f"a line is not {{at, level, message}}: {line!r}"[:200])
        lines.append(LogLine(line["at"], line["level"], line["message"]))
    return NodeRunLog(
        id=data["id"],
        execution_id=data["execution_id"],
        workflow_id=data["workflow_id"],
        node_id=data["node_id"],
        attempt=data["attempt"],
        at=data["at"],
        lines=tuple(lines),
        item=item,
        tenant=data["tenant"],
        cut=data["cut"],
        cut_lines=data["cut_lines"],
    )
