"""Records written with the older schema versions shipped in `avro/history/`, as a topic may still hold them."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro

from braidflow.schemas.store import HISTORY_DIR, fingerprint


def history_schema(name: str, version: int) -> dict[str, Any]:
    """Version `version` of record `name` (e.g. "Transition"), as shipped."""
    path = HISTORY_DIR / f"braidflow.{name}.v{version}.avsc"
    return fastavro.parse_schema(json.loads(path.read_text(encoding="utf-8")))


def written_with(name: str, version: int, record: dict[str, Any]) -> bytes:
    """`record` framed and written with that older version, as an older worker wrote it."""
    schema = history_schema(name, version)
    buffer = io.BytesIO()
    buffer.write(b"\xc3\x01" + fingerprint(schema))
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()
