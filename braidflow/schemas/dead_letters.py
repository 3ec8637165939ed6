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

A dead letter must itself fit a record, whatever it is about: a payload (a
record's key or value, a node's input or a value of its context) over
`HEAD_BYTES` is kept as its head, with the size and SHA-256 of the whole, and
the letter says so (`truncated`). The record that failed for being too large
is the usual case: written whole, its dead letter failed in turn and stopped
the agent that wrote it.

Beside them, `redrive` records (`RedriveMark`) say that a dead letter was sent
again, by whom and when, so every worker's index shows it, not only the one
that took the redrive. The topic has one partition, so a mark always comes
after the dead letter it names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from braidflow.access import DEFAULT_TENANT
from braidflow.engine import DeadLetterNode, NodeError

RECORD = "record"
NODE = "node"
KINDS = (RECORD, NODE)
"""The kinds of dead letters."""
REDRIVE = "redrive"

HEAD_BYTES = 16 * 1024
"""The most of one payload a dead letter keeps: enough to recognise it, small enough that a
letter with every payload at its head (escaped, base64) stays far below any record limit."""
REASON_CHARS = 8 * 1024
"""The most of a reason a dead letter keeps."""

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
class Cut:
    """Of a payload a dead letter keeps only the head of: the whole one's size and SHA-256."""

    size: int
    sha256: str

    @classmethod
    def of(cls, whole: bytes) -> Cut:
        return cls(len(whole), hashlib.sha256(whole).hexdigest())

    def as_json(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be processed.

    `truncated` names the payloads (`key`, `value`) held only as their head,
    once written: a letter read back from the topic.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    at: int
    truncated: Mapping[str, Cut] = field(default_factory=dict)
    # Whose record it was, when known: an events topic's tenant, an execution's.
    tenant: str = DEFAULT_TENANT

    def encode(self) -> bytes:
        """The JSON value written to the dead-letter topic, its payloads cut to `HEAD_BYTES`."""
        record: dict[str, Any] = {
            "kind": RECORD,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason[:REASON_CHARS],
            "at": self.at,
        }
        cuts = dict(self.truncated)
        for name, raw in (("key", self.key), ("value", self.value)):
            if raw is not None and len(raw) > HEAD_BYTES:
                cuts[name] = Cut.of(raw)
                raw = raw[:HEAD_BYTES]
            record[name] = None if raw is None else base64.b64encode(raw).decode("ascii")
        if cuts:
            record["truncated"] = {name: cut.as_json() for name, cut in cuts.items()}
        if self.tenant != DEFAULT_TENANT:
            # Written only for another tenant: a default tenant's letter reads as before.
            record["tenant"] = self.tenant
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
            cuts = record.pop("truncated", None) or {}
            truncated = {name: Cut(cut["size"], cut["sha256"]) for name, cut in cuts.items()}
            if not all(
                isinstance(c.size, int) and isinstance(c.sha256, str) for c in truncated.values()
            ):
                raise TypeError("truncated: each entry is {size, sha256}")
            return cls(**record, truncated=truncated)
        except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise ValueError(f"not a record dead letter: {exc!r}") from None


def encode_node_letter(letter: DeadLetterNode) -> bytes:
    """The JSON value of a node dead letter, as written to the dead-letter topic.

    An input or context value whose JSON is over `HEAD_BYTES` is replaced by
    `head_of_json` of it: a redrive without a patched input runs the node with
    the input its execution holds, so the letter needs only enough to show.
    """
    return _dumps(
        {
            "kind": NODE,
            "id": letter.id,
            "execution_id": letter.execution_id,
            "workflow_id": letter.workflow_id,
            "workflow_version": letter.workflow_version,
            "node_id": letter.node_id,
            "at": letter.at,
            "input": head_of_json(letter.input),
            "errors": [_error_json(e) for e in letter.errors],
            "context": {name: head_of_json(value) for name, value in letter.context.items()},
            # Written only for another tenant: a default tenant's letter reads as before.
            **({} if letter.tenant == DEFAULT_TENANT else {"tenant": letter.tenant}),
        }
    )


def head_of_json(value: Any) -> Any:
    """`value` itself when its JSON fits `HEAD_BYTES`; else what says so and keeps its head:
    `{"truncated": true, "size": ..., "sha256": ..., "head": "<first HEAD_BYTES of the JSON>"}`."""
    text = _dumps(value)
    if len(text) <= HEAD_BYTES:
        return value
    return {
        "truncated": True,
        **Cut.of(text).as_json(),
        "head": text[:HEAD_BYTES].decode("utf-8", "ignore"),
    }


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


def _dumps(record: Any) -> bytes:
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
