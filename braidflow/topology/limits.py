"""How large and how deep what comes from outside may be: definitions, request bodies, events.

One place for the limits the API, the CLI's `validate` and the event router
share, so that no single request can hold the engine up: CPython's JSON parser
gives up past about 1,000 levels with a RecursionError, PyYAML's composer a
few hundred levels in, jsonschema walks every value it is given, and a YAML
alias bomb (nine levels of nine references) expands to 387 million values.

- `MAX_DEPTH`: arrays and objects nest at most 100 deep in any definition, body
  or event (deep enough for any real document, shallow enough for every
  recursive walk of it).
- `MAX_ALIAS_VALUES`: YAML aliases may add at most 10,000 values beyond the text.
- `MAX_DEFINITION_BYTES`, `MAX_NODES`: a definition's text and its node count.
- `OFF_LOOP_BYTES`: text longer than this is parsed and checked in a thread.

Pure: callers choose where the work runs.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100
MAX_ALIAS_VALUES = 10_000
MAX_DEFINITION_BYTES = 1024 * 1024
MAX_NODES = 1000
OFF_LOOP_BYTES = 64 * 1024


class LimitError(ValueError):
    """A document over one of the limits; `too_large` tells 413 (size) from 422 (shape)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large

    @property
    def status(self) -> int:
        """The HTTP status that answers it."""
        return 413 if self.too_large else 422


def depth_error(what: str) -> LimitError:
    """The error of `what` nesting deeper than `MAX_DEPTH`."""
    return LimitError(f"{what} nests arrays and objects deeper than the limit of {MAX_DEPTH}")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in `value` nest deeper than `limit` (no recursion: any depth,
    even a structure that contains itself, is answered)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def check_depth(value: Any, what: str) -> Any:
    """`value`, or LimitError when it nests deeper than `MAX_DEPTH`."""
    if too_deep(value):
        raise depth_error(what)
    return value


def parse_json(text: str | bytes | bytearray, what: str) -> Any:
    """JSON text as a value, within `MAX_DEPTH`; json.JSONDecodeError for what is not JSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise depth_error(what) from None
    return check_depth(value, what)
