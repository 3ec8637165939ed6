"""`${secrets.NAME}`: how a secret is named in a definition and carried, as text, to the executor.

The engine never sees a secret's value. Where a definition may name one (`SECRET_PARAMS`),
the hole `${secrets.NAME}` renders as itself, and every other `$` of the rendered request
(from the definition's text or from data) is doubled (`escape_dollars`). The executor then
reads `${secrets.NAME}` as a reference and `$$` as one `$` (`resolve_references`), so text an
execution's input or a node's output holds, `${secrets.DB_PASSWORD}` included, is sent as
written and never resolved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

SECRET_PARAMS: Mapping[str, frozenset[str]] = {
    "http": frozenset({"url", "headers", "query", "body"}),
}
"""The params, by node kind, that may name a secret: those only an executor's call reads."""

SECRET_HOLE = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")
"""The body of a hole naming a secret (the whole body: a secret is a hole of its own)."""

_REFERENCE = re.compile(r"\$\$|\$\{secrets\.([A-Za-z_][A-Za-z0-9_]*)\}")


def reference(name: str) -> str:
    """The text a hole naming secret `name` renders as."""
    return "${secrets." + name + "}"


def escape_dollars(value: Any) -> Any:
    """A JSON value with every `$` of its strings doubled (object keys are left alone)."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {k: escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value


def referenced(value: Any) -> frozenset[str]:
    """The secrets the strings of a JSON value (in the executor's form) name."""
    if isinstance(value, str):
        return frozenset(m.group(1) for m in _REFERENCE.finditer(value) if m.group(1))
    if isinstance(value, Mapping):
        return frozenset().union(*(referenced(v) for v in value.values()))
    if isinstance(value, list):
        return frozenset().union(*(referenced(v) for v in value))
    return frozenset()


def resolve_references(value: Any, lookup: Callable[[str], str]) -> Any:
    """A JSON value with `${secrets.NAME}` in its strings replaced by `lookup(NAME)` and `$$`
    by `$` (object keys are left alone, as `escape_dollars` leaves them)."""
    if isinstance(value, str):
        if "$" not in value:
            return value
        return _REFERENCE.sub(lambda m: "$" if m.group(1) is None else lookup(m.group(1)), value)
    if isinstance(value, Mapping):
        return {k: resolve_references(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, lookup) for v in value]
    return value
