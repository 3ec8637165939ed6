"""How a record names the schema it was written with: the bytes in front of the Avro body."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol, cast

from fastavro import parse_schema

from braidflow.schemas.store import Schema, SchemaStore, fingerprint


class CodecError(ValueError):
    """A record that cannot be decoded (or a value that cannot be encoded), and why.

    A consumer treats an undecodable record as poison: it goes to the
    dead-letter topic with this message, and the partition moves on.
    """


class Framing(Protocol):
    """Writes and reads the header that tells a reader which schema wrote the body."""

    def header(self, schema: Schema) -> bytes:
        """Bytes written in front of every body written with `schema`."""
        ...

    def writer_schema(self, data: bytes) -> tuple[Schema, int]:
        """The schema `data` was written with, and where its body starts; CodecError if unknown."""
        ...


SINGLE_OBJECT_MAGIC = b"\xc3\x01"
_SINGLE_OBJECT_HEADER = len(SINGLE_OBJECT_MAGIC) + 8


class SingleObjectFraming:
    """Avro single-object encoding: C3 01, the 8-byte CRC-64-AVRO fingerprint of the writer schema.

    Any Avro reader that has the schema can decode the record: the fingerprint
    is computed from the schema alone, so no registry service is needed.
    """

    def __init__(self, store: SchemaStore) -> None:
        self.store = store

    def header(self, schema: Schema) -> bytes:
        return SINGLE_OBJECT_MAGIC + fingerprint(schema)

    def writer_schema(self, data: bytes) -> tuple[Schema, int]:
        if data[:2] != SINGLE_OBJECT_MAGIC:
            raise CodecError(
                f"not Avro single-object encoding: starts with {data[:2].hex() or 'nothing'},"
                f" expected {SINGLE_OBJECT_MAGIC.hex()}"
            )
        if len(data) < _SINGLE_OBJECT_HEADER:
            raise CodecError(f"truncated single-object header: {len(data)} bytes")
        key = data[2:_SINGLE_OBJECT_HEADER]
        schema = self.store.get(key)
        if schema is None:
            raise CodecError(
                f"unknown writer schema: fingerprint {key.hex()} (CRC-64-AVRO, little-endian)"
                " is not in the schema store"
            )
        return schema, _SINGLE_OBJECT_HEADER


_CONFLUENT_MAGIC = b"\x00"
_CONFLUENT_HEADER = len(_CONFLUENT_MAGIC) + 4


class ConfluentFraming:
    """Confluent wire format: byte 0, then the schema registry's 4-byte big-endian schema id.

    `register` takes a schema as JSON text and returns its id (registering it
    if need be); `lookup` returns the JSON text of the schema with an id, or
    None. Both are called once per schema: the results are cached.
    """

    def __init__(self, register: Callable[[str], int], lookup: Callable[[int], str | None]) -> None:
        self._register = register
        self._lookup = lookup
        self._by_id: dict[int, Schema] = {}

    def header(self, schema: Schema) -> bytes:
        schema_id = self._register(_schema_json(schema))
        # Our own records then decode without a lookup and without schema resolution.
        self._by_id.setdefault(schema_id, schema)
        return _CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")

    def writer_schema(self, data: bytes) -> tuple[Schema, int]:
        if data[:1] != _CONFLUENT_MAGIC:
            raise CodecError(
                f"not Confluent wire format: starts with {data[:1].hex() or 'nothing'},"
                f" expected {_CONFLUENT_MAGIC.hex()}"
            )
        if len(data) < _CONFLUENT_HEADER:
            raise CodecError(f"truncated Confluent header: {len(data)} bytes")
        schema_id = int.from_bytes(data[1:_CONFLUENT_HEADER], "big")
        schema = self._by_id.get(schema_id)
        if schema is None:
            text = self._lookup(schema_id)
            if text is None:
                raise CodecError(f"unknown writer schema: id {schema_id} is not in the registry")
            # fastavro types a parsed schema as any schema; a record schema parses to a dict.
            schema = self._by_id[schema_id] = cast(Schema, parse_schema(json.loads(text)))
        return schema, _CONFLUENT_HEADER


def _schema_json(schema: Schema) -> str:
    """The schema as JSON text, named types inlined, without fastavro's bookkeeping keys."""
    return json.dumps({k: v for k, v in schema.items() if not k.startswith("__")})
