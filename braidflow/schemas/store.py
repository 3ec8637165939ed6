"""The Avro schemas braidflow ships, and the store that finds a writer schema by fingerprint."""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint as _fingerprint_hex
from fastavro.schema import load_schema, to_parsing_canonical_form

Schema = dict[str, Any]
"""A record schema parsed by fastavro."""

AVRO_DIR = Path(__file__).parent / "avro"
HISTORY_DIR = AVRO_DIR / "history"


@functools.cache
def current_schema(name: str) -> Schema:
    """The current schema of record `name` (e.g. "braidflow.Transition"), parsed once per process.

    Named types defined in other files of the directory are resolved and inlined.
    """
    return load_schema(str(AVRO_DIR / f"{name}.avsc"))


def fingerprint(schema: Schema | str) -> bytes:
    """CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, little-endian bytes.

    This is the fingerprint Avro's single-object encoding puts in its header.
    """
    return bytes.fromhex(_fingerprint_hex(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


class SchemaStore:
    """Writer schemas by fingerprint.

    Readers need every schema a record still on a topic may have been written
    with, not only the current one: the store starts with the current schemas,
    reads the older versions shipped in `avro/history/` at the first fingerprint
    it does not know, and takes more with `register`.
    """

    def __init__(self, history: Path | None = None) -> None:
        self._by_fingerprint: dict[bytes, Schema] = {}
        # Older versions, read at the first fingerprint not found (None: read, or none):
        # most processes never meet one, and reading them all took 0.07 s of every start.
        self._history = history
        self._history_lock = threading.Lock()

    @classmethod
    def shipped(cls) -> SchemaStore:
        """A store with every current schema and every historical version shipped with braidflow.

        A historical file must be self-contained (named types written inline,
        as `fastavro.schema.expand_schema` produces), since older versions of
        the types it references are not kept as separate files.
        """
        store = cls(HISTORY_DIR)
        for path in sorted(AVRO_DIR.glob("*.avsc")):
            store.register(current_schema(path.stem))
        return store

    def register(self, schema: Schema) -> bytes:
        """Add a writer schema (parsed or as loaded from JSON); return its fingerprint."""
        parsed = parse_schema(schema)
        key = fingerprint(parsed)
        self._by_fingerprint.setdefault(key, parsed)
        return key

    def get(self, key: bytes) -> Schema | None:
        """The schema with fingerprint `key`, or None if the store has never seen it."""
        schema = self._by_fingerprint.get(key)
        if schema is None and self._history is not None:
            self._read_history()
            schema = self._by_fingerprint.get(key)
        return schema

    def _read_history(self) -> None:
        # Decoders run on threads too: another one asking meanwhile waits for every version.
        with self._history_lock:
            if self._history is None:
                return
            for path in sorted(self._history.glob("*.avsc")):
                self.register(json.loads(path.read_text(encoding="utf-8")))
            self._history = None
