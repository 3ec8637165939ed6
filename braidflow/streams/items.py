"""Where a foreach node's results wait until the node collects them: rows of the executions table.

The engine keeps only the results of chunks not yet complete in the state
and hands each complete chunk out (`ItemsChunk`), so no record grows with the
list. The chunks are rows of the executions table itself, under keys no
execution id takes (`<execution>/items/<node>/<attempt>/<chunk>`): written in
the same step, to the same changelog partition, ahead of the state row, so a
state that reached the changelog never names a chunk that did not. When every
item is in, the engine asks for the results (`CollectItems`); they are read
here and go back to it as one `ItemsCollected` transition, which is why their
size is capped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from braidflow.engine import (
    CollectItems,
    DropItems,
    ItemError,
    ItemsChunk,
    ItemsCollected,
    NodeError,
    Outgoing,
    ids,
)
from braidflow.engine.ids import chunk_key

MAX_RESULTS_BYTES = 512 * 1024
"""The most a foreach node's results may take as JSON: they travel as one transition, and the
node's output is part of the execution's state record, which must stay under the broker's
`message.max.bytes` (1 MiB by default)."""


class ChunkTable(Protocol):
    """What the item store uses of the executions table (a dict will do)."""

    def get(self, key: bytes, /) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...
    def pop(self, key: bytes, default: None, /) -> bytes | None: ...


class ChunkTooLarge(Exception):
    """A chunk of results would be a row larger than a record may be."""

    def __init__(self, size: int) -> None:
        super().__init__(f"a chunk of results would take {size:,} bytes")
        self.size = size


class ItemStore:
    """Applies the engine's chunk messages to the executions table."""

    def __init__(
        self, max_results_bytes: int = MAX_RESULTS_BYTES, max_row_bytes: int | None = None
    ) -> None:
        self._max_results_bytes = max_results_bytes
        self._max_row_bytes = max_row_bytes

    def apply(self, outgoing: Iterable[Outgoing], table: ChunkTable) -> list[Outgoing]:
        """Store, answer or drop chunks; what is left to send, a collection becoming its answer.

        Runs before the state row is written, and in the order of `outgoing`: a step
        may flush the last chunk and ask for the collection at once. ChunkTooLarge,
        before anything of that chunk is written, for a row over `max_row_bytes`.
        """
        remaining: list[Outgoing] = []
        for message in outgoing:
            if isinstance(message, ItemsChunk):
                key = chunk_key(
                    message.execution_id, message.node_id, message.attempt, message.chunk
                )
                row = _encode_chunk(message)
                if self._max_row_bytes is not None and len(row) > self._max_row_bytes:
                    raise ChunkTooLarge(len(row))
                table[key] = row
            elif isinstance(message, CollectItems):
                remaining.append(self._collect(message, table))
            elif isinstance(message, DropItems):
                for chunk in range(message.chunks):
                    key = chunk_key(message.execution_id, message.node_id, message.attempt, chunk)
                    table.pop(key, None)
            else:
                remaining.append(message)
        return remaining

    def _collect(self, request: CollectItems, table: ChunkTable) -> ItemsCollected:
        results: list[Any] = []
        errors: list[ItemError] = []
        size = 0
        for chunk in range(request.chunks):
            raw = table.get(
                chunk_key(request.execution_id, request.node_id, request.attempt, chunk)
            )
            if raw is None:
                # The engine sees the count fall short and fails the attempt, naming it.
                continue
            size += len(raw)
            if size > self._max_results_bytes:
                error = _too_large(request, self._max_results_bytes, size, chunk)
                return self._answer(request, (), (), error)
            stored = json.loads(raw)
            results.extend(stored["results"])
            errors.extend(ItemError(e["index"], e["type"], e["message"]) for e in stored["errors"])
        return self._answer(request, tuple(results), tuple(errors), None)

    @staticmethod
    def _answer(
        request: CollectItems,
        results: tuple[Any, ...],
        errors: tuple[ItemError, ...],
        error: NodeError | None,
    ) -> ItemsCollected:
        return ItemsCollected(
            ids.collected_id(request.id),
            request.execution_id,
            request.at,
            request.node_id,
            request.attempt,
            results,
            errors,
            error,
        )


def _too_large(request: CollectItems, limit: int, size: int, chunk: int) -> NodeError:
    return NodeError(
        "ResultsTooLarge",
        f"the results of {request.total} items pass {limit} bytes as JSON"
        f" ({size} bytes by chunk {chunk} of {request.chunks}); have each item return less,"
        " or write large results elsewhere and return a reference",
        request.node_id,
    )


def _encode_chunk(chunk: ItemsChunk) -> bytes:
    errors = [{"index": e.index, "type": e.type, "message": e.message} for e in chunk.errors]
    return json.dumps(
        {"results": list(chunk.results), "errors": errors}, separators=(",", ":")
    ).encode()
