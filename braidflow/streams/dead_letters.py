"""Dead letters: what cannot be processed goes aside with the reason, never stalls a partition.

A dead letter is JSON, so any tool can read it. Two kinds share the
dead-letter topic, told apart by `kind`:

- `record` (`DeadLetter`): a record no part of the worker could process: where it
  came from (topic, partition, offset), its key and value (base64, since the
  value may be undecodable), the reason, and when. Records written before
  `kind` existed have none and are of this kind.
- `node` (the engine's `DeadLetterNode`, written by `encode_node_letter`): a node
  that failed its execution (with or without retries), with its input, the error
  of every attempt and the context needed to run it again.

Beside them, `redrive` records (`RedriveMark`) say that a dead letter was sent
again, by whom and when, so every worker's index shows it, not only the one
that took the redrive. The topic has one partition, so a mark always comes
after the dead letter it names.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from braidflow.engine import DeadLetterNode, NodeError

RECORD = "record"
NODE = "node"
KINDS = (RECORD, NODE)
"""The kinds of dead letters."""
REDRIVE = "redrive"

# What decoding checks besides the JSON shape, so a reader can rely on the types.
_RECORD_FIELDS = {"topic": str, "partition": int, "offset": int, "reason": str, "at": int}
_REDRIVE_FIELDS = {"dead_letter_id": str, "at": int, "by": str}
_NODE_FIELDS = {
    "id": str,
    "execution_id": str,
    "workflow_id": str,
    "workflow_version": int,
    "node_id": str,
    "at": int,
}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be processed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    at: int

    def encode(self) -> bytes:
        """The JSON value written to the dead-letter topic."""
        record: dict[str, Any] = {"kind": RECORD, **asdict(self)}
        for name in ("key", "value"):
            raw = record[name]
            record[name] = None if raw is None else base64.b64encode(raw).decode("ascii")
        return _dumps(record)

    @classmethod
    def decode(cls, data: bytes) -> DeadLetter:
        """A record dead letter read back from the dead-letter topic; ValueError if it is not one."""
        return cls._from_json(_parse(data, RECORD)[1])

    @classmethod
    def _from_json(cls, record: dict[str, Any]) -> DeadLetter:
        _check(record, _RECORD_FIELDS, RECORD)
        try:
            for name in ("key", "value"):
                if record[name] is not None:
                    record[name] = base64.b64decode(record[name], validate=True)
            return cls(**record)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"not a record dead letter: {exc!r}") from None


def encode_node_letter(letter: DeadLetterNode) -> bytes:
    """The JSON value of a node dead letter, as written to the dead-letter topic."""
    return _dumps(
        {
            "kind": NODE,
            "id": letter.id,
            "execution_id": letter.execution_id,
            "workflow_id": letter.workflow_id,
            "workflow_version": letter.workflow_version,
            "node_id": letter.node_id,
            "at": letter.at,
            "input": letter.input,
            "errors": [_error_json(e) for e in letter.errors],
            "context": dict(letter.context),
        }
    )


def _error_json(error: NodeError) -> dict[str, Any]:
    fields = {"type": error.type, "message": error.message}
    return fields if error.node_id is None else {**fields, "node_id": error.node_id}


def _node_letter(record: dict[str, Any]) -> DeadLetterNode:
    _check(record, _NODE_FIELDS, NODE)
    try:
        errors, context = record.pop("errors"), record.pop("context")
        if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
            raise TypeError("errors must be a list of objects")
        if not isinstance(context, dict):
            raise TypeError("context must be an object")
        # Written before errors named their node: they have no node_id.
        read = tuple(NodeError(e["type"], e["message"], e.get("node_id")) for e in errors)
        return DeadLetterNode(**record, errors=read, context=context)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a node dead letter: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class RedriveMark:
    """Dead letter `dead_letter_id` was sent again at `at` (epoch ms) by `by`."""

    dead_letter_id: str
    at: int
    by: str

    def encode(self) -> bytes:
        """The JSON value written to the dead-letter topic."""
        return _dumps({"kind": REDRIVE, **asdict(self)})

    @classmethod
    def _from_json(cls, record: dict[str, Any]) -> RedriveMark:
        _check(record, _REDRIVE_FIELDS, REDRIVE)
        return cls(record["dead_letter_id"], record["at"], record["by"])


def decode_dead_letter(data: bytes) -> DeadLetter | DeadLetterNode | RedriveMark:
    """Any record of the dead-letter topic; ValueError if it is none of its kinds."""
    kind, record = _parse(data)
    if kind == NODE:
        return _node_letter(record)
    if kind == REDRIVE:
        return RedriveMark._from_json(record)
    return DeadLetter._from_json(record)


def _dumps(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def _parse(data: bytes, expected: str | None = None) -> tuple[str, dict[str, Any]]:
    """The kind of the dead letter in `data` (which must be `expected` if given) and its fields."""
    record = json.loads(data)
    if not isinstance(record, dict):
        raise ValueError(f"a dead letter is a JSON object, not {type(record).__name__}")
    kind = record.pop("kind", RECORD)
    if kind not in (*KINDS, REDRIVE) or (expected is not None and kind != expected):
        raise ValueError(f"not a {expected or 'known'} dead letter: kind {kind!r}")
    return kind, record


def _check(record: Mapping[str, Any], fields: Mapping[str, type], kind: str) -> None:
    for name, type_ in fields.items():
        if not isinstance(record.get(name), type_):
            raise ValueError(f"not a {kind} dead letter: {name} is not {type_.__name__}")
